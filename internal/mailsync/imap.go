package mailsync

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/imapsync"
	"github.com/postdesk/postdesk/internal/store"
)

// IMAP is the IMAP transport: one imapsync session per mailbox. Its cursor
// is "imap:UIDVALIDITY:LASTUID".
type IMAP struct {
	// Tune adjusts each session's configuration (tests: TLS roots, timings).
	Tune func(cfg *imapsync.Config)
}

var _ Transport = IMAP{}

// Fetcher builds a mailbox's IMAP session from its server settings.
func (t IMAP) Fetcher(s Session) (Fetcher, error) {
	srv := s.Server
	cfg := imapsync.Config{
		Addr:            net.JoinHostPort(srv.IMAPHost, strconv.Itoa(srv.IMAPPort)),
		Security:        imapsync.Security(srv.IMAPSecurity),
		Username:        s.Username,
		Auth:            imapsync.AuthMethod(srv.AuthMethod),
		Folders:         srv.Folders,
		InitialDays:     srv.InitialDays,
		MaxAge:          time.Duration(srv.MaxAgeDays) * 24 * time.Hour,
		AfterProcessing: imapsync.Action(srv.AfterProcessing),
		MoveTo:          srv.MoveTo,
		Logger:          s.Logger,
		Token:           imapPermanent(s.Token),
		RefreshToken:    imapPermanent(s.RefreshToken),
		Password:        imapPermanent(s.Password),
		Pace:            s.Pace,
	}
	if t.Tune != nil {
		t.Tune(&cfg)
	}
	return &imapFetcher{cfg: cfg, events: s.Events}, nil
}

// Ahead: under one UIDVALIDITY a cursor only moves up; a new UIDVALIDITY
// replaces it (the folder is rescanned).
func (IMAP) Ahead(stored, next Cursor) bool {
	sv, su, err1 := IMAPPosition(stored)
	nv, nu, err2 := IMAPPosition(next)
	return err1 == nil && err2 == nil && stored != "" && sv == nv && su > nu
}

// imapPermanent passes mailsync's permanent failures on as imapsync's.
func imapPermanent(f func(context.Context) (string, error)) func(context.Context) (string, error) {
	if f == nil {
		return nil
	}
	return func(ctx context.Context) (string, error) {
		v, err := f(ctx)
		if err != nil && errors.Is(err, ErrPermanent) {
			return "", fmt.Errorf("%w: %w", imapsync.ErrPermanent, err)
		}
		return v, err
	}
}

// IMAPCursor encodes an IMAP folder's position as a cursor.
func IMAPCursor(uidValidity, lastUID uint32) Cursor {
	return Cursor("imap:" + strconv.FormatUint(uint64(uidValidity), 10) + ":" + strconv.FormatUint(uint64(lastUID), 10))
}

// IMAPPosition decodes an IMAP cursor (zeros for "": never fetched).
func IMAPPosition(c Cursor) (uidValidity, lastUID uint32, err error) {
	if c == "" {
		return 0, 0, nil
	}
	rest, ok := strings.CutPrefix(string(c), "imap:")
	v, u, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return 0, 0, fmt.Errorf("not an IMAP cursor: %q", c)
	}
	vn, err1 := strconv.ParseUint(v, 10, 32)
	un, err2 := strconv.ParseUint(u, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("not an IMAP cursor: %q: %w", c, err)
	}
	return uint32(vn), uint32(un), nil
}

// IMAPCheckpoint reads an IMAP folder's checkpoint from the database (for
// `postdesk mailbox show` and tests).
func IMAPCheckpoint(ctx context.Context, db *store.DB, mailboxID int64, folder string) (imapsync.Checkpoint, error) {
	c, err := db.SyncCursor(ctx, mailboxID, folder)
	if err != nil {
		return imapsync.Checkpoint{Folder: folder}, err
	}
	v, u, err := IMAPPosition(Cursor(c))
	return imapsync.Checkpoint{Folder: folder, UIDValidity: v, LastUID: u}, err
}

type imapFetcher struct {
	cfg    imapsync.Config
	events func(Event)
}

// Run runs the IMAP session and turns its ends into mailsync's.
func (f *imapFetcher) Run(ctx context.Context, st Store) error {
	return imapRunErr(imapsync.Run(ctx, &f.cfg, imapStore{st}, f.emit))
}

func (f *imapFetcher) emit(ev imapsync.Event) {
	if f.events != nil {
		f.events(Event{Kind: EventKind(ev.Kind), Err: ev.Err})
	}
}

// imapRunErr turns imapsync.Run's end into the Fetcher's.
func imapRunErr(err error) error {
	var ae *imapsync.AuthError
	switch {
	case errors.As(err, &ae):
		r := &RefusedError{Mechanism: ae.Mechanism, Refreshed: ae.Refreshed, Err: err}
		if ae.Failure != nil {
			r.Detail = ae.Failure.Error()
		}
		return r
	case errors.Is(err, imapsync.ErrPermanent) && !errors.Is(err, ErrPermanent):
		return fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	return err
}

// imapStore is imapsync's Store over mailsync's: checkpoints become cursors.
type imapStore struct{ st Store }

var _ imapsync.Flusher = imapStore{}

func (a imapStore) Checkpoint(ctx context.Context, folder string) (imapsync.Checkpoint, error) {
	c, err := a.st.Cursor(ctx, folder)
	if err != nil {
		return imapsync.Checkpoint{Folder: folder}, err
	}
	if strings.HasPrefix(string(c), "graph:") {
		// The mailbox was fetched through Graph before: start over as on
		// a first connect (dedupe makes mail seen before a no-op).
		return imapsync.Checkpoint{Folder: folder}, nil
	}
	v, u, err := IMAPPosition(c)
	return imapsync.Checkpoint{Folder: folder, UIDValidity: v, LastUID: u}, err
}

func (a imapStore) Handle(ctx context.Context, m *imapsync.Message) error {
	return a.st.Handle(ctx, &Message{Folder: m.Folder, Cursor: IMAPCursor(m.UIDValidity, m.UID), UIDValidity: m.UIDValidity, UID: m.UID,
		Where: fmt.Sprintf("%s, UID %d", m.Folder, m.UID), InternalDate: m.InternalDate, Size: m.Size, Truncated: m.Truncated, Body: m.Body})
}

func (a imapStore) Reset(ctx context.Context, folder string, uidValidity uint32) error {
	return a.st.Advance(ctx, folder, IMAPCursor(uidValidity, 0))
}

func (a imapStore) Advance(ctx context.Context, cp imapsync.Checkpoint) error {
	return a.st.Advance(ctx, cp.Folder, IMAPCursor(cp.UIDValidity, cp.LastUID))
}

func (a imapStore) Skipped(ctx context.Context, folder string, uids []uint32, reason string) error {
	which := make([]string, len(uids))
	for i, u := range uids {
		which[i] = "UID " + strconv.FormatUint(uint64(u), 10)
	}
	return a.st.Skipped(ctx, folder, which, reason)
}

func (a imapStore) Flush(ctx context.Context) error { return a.st.Flush(ctx) }
