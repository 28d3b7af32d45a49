package desk

import (
	"context"
	"errors"

	"github.com/postdesk/postdesk/internal/store"
)

// TEMPORARY: the outbox contract's API, so the replyui branch compiles
// until the outbox branch lands. Reverted before merging outbox.

// Upload is an uploaded file (contract stub).
type Upload struct {
	Filename, ContentType string
	Data                  []byte
}

// ReplyInput is a reply (contract stub).
type ReplyInput struct {
	Text        string
	To          []string
	Cc          []string
	Status      string
	Attachments []Upload
}

// Reply bounds (contract stub).
const (
	MaxReplyTextBytes       = 64 << 10
	MaxReplyAttachmentBytes = 20 << 20
)

// ErrNoSMTP (contract stub).
var ErrNoSMTP = errors.New("mailbox has no SMTP settings")

var errStub = errors.New("desk: replies are not implemented on this branch yet")

// Reply (contract stub).
func (d *Desk) Reply(ctx context.Context, ticketID int64, by store.User, in ReplyInput) (store.Message, error) {
	return store.Message{}, errStub
}

// ReplyForm is the composer's prefill (contract stub).
type ReplyForm struct {
	To, Cc             []string
	Signature          string
	CanSend            bool
	Held               bool
	MaxAttachmentBytes int64
}

// ReplyForm (contract stub).
func (d *Desk) ReplyForm(ctx context.Context, ticketID int64) (ReplyForm, error) {
	return ReplyForm{}, errStub
}

// RetryReply (contract stub).
func (d *Desk) RetryReply(ctx context.Context, messageID int64, by store.User) error { return errStub }

// MarkReplySent (contract stub).
func (d *Desk) MarkReplySent(ctx context.Context, messageID int64, by store.User) error {
	return errStub
}
