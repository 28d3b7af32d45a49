package mailsync

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/postdesk/postdesk/internal/msgraph"
	"github.com/postdesk/postdesk/internal/store"
)

// Cursor is how far one folder of a mailbox has been fetched. Only the
// Transport that wrote it reads it; the database keeps it as an opaque
// string per mailbox and folder ("" when never fetched).
type Cursor string

// Message is one fetched message, handed to Store.Handle.
type Message struct {
	Folder string
	// Cursor is the folder's cursor once this message is committed (or
	// quarantined).
	Cursor Cursor
	// UIDValidity and UID place an IMAP message on its server (kept on a
	// quarantine row); zero for a transport without UIDs.
	UIDValidity, UID uint32
	// Where names the message on its server in plain words ("INBOX, UID 42").
	Where        string
	InternalDate time.Time // when the server received it (zero if unknown)
	Size         int64     // its full size, even when Truncated
	// Truncated reports that only the header section was fetched: the
	// message is over the size limit.
	Truncated bool
	// Body is the raw message; valid only until Handle returns.
	Body io.Reader
}

// Store is a Fetcher's view of one mailbox in the database. A Fetcher calls
// it from one goroutine.
//
// Invariant: a folder's cursor moves only with messages that are committed
// or quarantined. Handle may return before its message commits (messages
// commit in batches, each with its cursor move); Flush commits everything
// handled so far. Advance flushes first, then moves the cursor without a
// message (past mail deliberately passed over, or reported to Skipped).
type Store interface {
	// Cursor returns the folder's cursor ("" when never fetched).
	Cursor(ctx context.Context, folder string) (Cursor, error)
	// Handle consumes m.Body; its effect commits with the move of the
	// folder's cursor to m.Cursor. An error stops the fetch; the next one
	// starts again from the cursor.
	Handle(ctx context.Context, m *Message) error
	// Flush commits every handled message, or returns the first failure.
	Flush(ctx context.Context) error
	// Advance commits what is pending, then sets the folder's cursor.
	Advance(ctx context.Context, folder string, c Cursor) error
	// Skipped tells the admins about messages left on the server (which
	// names them in the transport's words), with the reason.
	Skipped(ctx context.Context, folder string, which []string, reason string) error
}

// Fetcher fetches one mailbox into a Store until ctx ends or it fails for
// good: a refusal of the credentials (*RefusedError) or an error wrapping
// ErrPermanent. Anything else it retries with back-off itself.
type Fetcher interface {
	Run(ctx context.Context, st Store) error
}

// Session is what a Transport needs to build one mailbox's Fetcher.
type Session struct {
	Mailbox store.Mailbox
	Server  store.MailboxServer
	// Username is the login name (the address, a delegate, or the
	// server settings' user name).
	Username string
	// Token and RefreshToken give OAuth mailboxes their access token (a
	// refreshed one after a refusal); Password gives password mailboxes
	// theirs. Their errors wrap ErrPermanent when retrying cannot help.
	Token, RefreshToken func(ctx context.Context) (string, error)
	Password            func(ctx context.Context) (string, error)
	// Graph is the mailbox's Microsoft Graph client (the Graph transport
	// only; shared with sending).
	Graph *msgraph.Client
	// Events reports the session's state (must not block).
	Events func(Event)
	// Pace is called before each connection to the server and may wait:
	// the Syncer spreads its mailboxes' logins over time with it.
	Pace   func(ctx context.Context) error
	Logger *slog.Logger
}

// Transport builds Fetchers of one kind (IMAP, Microsoft Graph).
type Transport interface {
	Fetcher(s Session) (Fetcher, error)
	// Ahead reports whether stored is already past next in the same
	// folder, so an overlapping writer never moves a cursor backwards.
	Ahead(stored, next Cursor) bool
}

// TransportIMAP names the IMAP transport.
const TransportIMAP = store.TransportIMAP

// transportFor chooses a mailbox's transport from its server settings.
func transportFor(srv store.MailboxServer) string {
	if srv.FetchesWithGraph() {
		return TransportGraph
	}
	return TransportIMAP
}

// EventKind names a fetch session's event.
type EventKind string

// Events.
const (
	EventConnected  EventKind = "connected"   // signed in
	EventIdling     EventKind = "idling"      // up to date, waiting for new mail
	EventSynced     EventKind = "synced"      // a pass over the folders ended
	EventError      EventKind = "error"       // the session failed with Err; it is retried
	EventAuthFailed EventKind = "auth_failed" // the server refused the credentials for good
)

// Event reports a fetch session's state.
type Event struct {
	Kind EventKind
	Err  error
}

// ErrPermanent marks a failure that retrying cannot fix: the Fetcher stops.
var ErrPermanent = errors.New("mailsync: permanent failure")

// RefusedError is a Fetcher's end when the mail server refused the
// credentials (for OAuth, also with a refreshed token).
type RefusedError struct {
	Mechanism string // e.g. "XOAUTH2", "PLAIN"
	Refreshed bool   // a refreshed token was refused too
	// Detail is the server's reason, when it gave one.
	Detail string
	Err    error
}

func (e *RefusedError) Error() string { return e.Err.Error() }

// Unwrap returns the transport's error.
func (e *RefusedError) Unwrap() error { return e.Err }
