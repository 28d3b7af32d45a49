package store

import "time"

// TEMPORARY: the outbox contract's types, so the replyui branch compiles
// until the outbox branch lands. Reverted before merging outbox.

// Delivery states.
const (
	DeliveryQueued  = "queued"
	DeliverySending = "sending"
	DeliverySent    = "sent"
	DeliveryHeld    = "held"
	DeliveryFailed  = "failed"
	DeliveryUnknown = "unknown"
)

// Delivery is an outgoing message's state (contract stub).
type Delivery struct {
	State         string
	Attempts      int
	LastError     string
	ErrorKind     string
	NextAttemptAt time.Time
	SentAt        time.Time
	Auto          bool
}
