package imapsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/postdesk/postdesk/internal/sasl"
)

// Checkpoint is how far a folder has been synced: every message with a UID
// up to LastUID under UIDValidity has been handled, skipped or deliberately
// passed over. A zero UIDValidity means the folder was never synced.
type Checkpoint struct {
	Folder      string
	UIDValidity uint32
	LastUID     uint32
}

// Message is one message handed to Store.Handle.
type Message struct {
	Folder       string
	UIDValidity  uint32
	UID          uint32
	InternalDate time.Time // when the server received it (RFC 9051 2.3.3)
	Size         int64     // RFC822.SIZE: the full size, even when Truncated
	// Truncated reports that Size exceeded Config.MaxMessageBytes: Body is
	// the header section only (BODY.PEEK[HEADER], RFC 9051 6.4.5), ending
	// with its empty line.
	Truncated bool
	// Body is the raw message (CRLF line ends) streamed from the
	// connection. It is valid only until Handle returns.
	Body io.Reader
}

// Store keeps the checkpoints and receives the messages. It is implemented
// by the database layer. A Run or SyncOnce calls it from one goroutine.
type Store interface {
	// Checkpoint returns the folder's checkpoint: the zero Checkpoint (with
	// any Folder) when the folder was never synced.
	Checkpoint(ctx context.Context, folder string) (Checkpoint, error)
	// Handle consumes m.Body, then commits the message's effect together
	// with the checkpoint move to (m.UIDValidity, m.UID). An error stops the
	// sync; the next one hands the message over again.
	Handle(ctx context.Context, m *Message) error
	// Reset records a new UIDVALIDITY for the folder with LastUID 0: the
	// folder is rescanned, and dedupe downstream (Message-ID) keeps the
	// messages seen before from being created twice.
	Reset(ctx context.Context, folder string, uidValidity uint32) error
	// Advance moves the checkpoint without a message: on the first connect
	// past the older mail, or past messages reported to Skipped.
	Advance(ctx context.Context, cp Checkpoint) error
	// Skipped reports messages that were not fetched, with the reason, for
	// the admins. Advance past them follows; after a crash in between they
	// may be reported again.
	Skipped(ctx context.Context, folder string, uids []uint32, reason string) error
}

// Flusher is implemented by a Store that commits several handled messages
// in one transaction: Handle may then return before its commit, and Flush
// commits everything Handle accepted since the last Flush (still with the
// checkpoint, in UID order). The session calls Flush before Advance,
// Skipped, Reset, an after-processing action, a wait for new mail, and at
// the end of a sync, so that nothing is changed on the server, nor the
// checkpoint moved past, a message that is not committed.
type Flusher interface {
	Flush(ctx context.Context) error
}

// EventKind names a session event.
type EventKind string

const (
	EventConnected  EventKind = "connected"   // logged in
	EventIdling     EventKind = "idling"      // waiting in IDLE (or between polls)
	EventSynced     EventKind = "synced"      // a pass over the folders ended; Fetched counts its messages
	EventError      EventKind = "error"       // the session failed with Err; Run retries
	EventAuthFailed EventKind = "auth_failed" // the server refused the credentials for good; Run returns Err
)

// Event reports the session's state, for the mailbox's status in the UI and
// metrics.
type Event struct {
	Kind    EventKind
	Err     error
	Fetched int
	At      time.Time
}

// AuthError is returned when the server refused the credentials: for the
// OAuth methods after one retry with Config.RefreshToken. The caller marks
// the mailbox as needing re-authentication.
type AuthError struct {
	Username  string
	Mechanism string // "XOAUTH2", "OAUTHBEARER", "PLAIN", "LOGIN"
	Refreshed bool   // a token from RefreshToken was refused too
	// Failure is the SASL failure the server sent (RFC 7628 3.2.2), or nil.
	Failure *sasl.AuthError
	Err     error // the server's final response
}

func (e *AuthError) Error() string {
	s := fmt.Sprintf("imapsync: %s authentication of %s refused", e.Mechanism, e.Username)
	if e.Refreshed {
		s += " (also with a refreshed token)"
	}
	s += ": " + e.Err.Error()
	if e.Failure != nil {
		s += " (" + e.Failure.Error() + ")"
	}
	return s
}

// Unwrap returns the server's response and the SASL failure.
func (e *AuthError) Unwrap() []error {
	errs := []error{e.Err}
	if e.Failure != nil {
		errs = append(errs, e.Failure)
	}
	return errs
}

// ErrPermanent marks an error of Token, RefreshToken or Password that a
// retry cannot fix (for example, the provider refused the refresh token for
// good): Run returns it instead of retrying. Wrap it:
// fmt.Errorf("%w: %w", imapsync.ErrPermanent, err).
var ErrPermanent = errors.New("imapsync: permanent failure")
