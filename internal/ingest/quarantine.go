package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

// Quarantine: no message can block a mailbox.
//
// A message whose parse or write fails for a reason other than a transient
// one (the database unreachable or busy, the work cancelled) is quarantined:
// its raw source is already in the blob store, a quarantine row records
// where it came from and why it failed, and the caller's own writes (mail
// sync: the checkpoint moving past it) commit in the same transaction, so a
// checkpoint never passes a message that was neither stored nor
// quarantined. Each mailbox has one unread notice that counts its open
// quarantined messages. Retry parses the kept source again and applies it;
// success resolves the row (and reads the notice once none is open).

// Failed is a message that could not be stored, and where it came from.
type Failed struct {
	Origin      string // store.OriginSync or store.OriginImport
	Folder      string // sync: folder, UIDVALIDITY and UID
	UIDValidity uint32
	UID         uint32
	SourceName  string // import: the file it was read from
	Stored      Stored // its raw source in the blob store
	ReceivedAt  time.Time
	Err         error
}

// QuarantinedError is the error of a message that was quarantined: Err is
// why it could not be stored; Row is its quarantine row.
type QuarantinedError struct {
	Row store.Quarantined
	Err error
}

func (e *QuarantinedError) Error() string {
	return fmt.Sprintf("quarantined (#%d): %v", e.Row.ID, e.Err)
}

func (e *QuarantinedError) Unwrap() error { return e.Err }

// ErrResolved is the error of retrying a quarantined message that is
// already stored.
var ErrResolved = errors.New("the quarantined email is already stored")

// RetryError is the error of a retry that failed again (recorded on the
// row, which is Row after the attempt).
type RetryError struct {
	Row store.Quarantined
	Err error
}

func (e *RetryError) Error() string { return "the email still could not be stored: " + e.Err.Error() }

func (e *RetryError) Unwrap() error { return e.Err }

// Transient reports whether a failure to parse or store a message is
// transient (try again later) rather than the message's own (quarantine it).
func (in *Ingester) Transient(ctx context.Context, err error) bool {
	return ctx.Err() != nil || in.db.Transient(err)
}

// Quarantine records f in one transaction with the caller's own writes
// (with may be nil) and refreshes the mailbox's notice; it is counted in
// /metrics once committed.
func (in *Ingester) Quarantine(ctx context.Context, mb store.Mailbox, f Failed, with func(tx *store.Tx) error) (store.Quarantined, error) {
	now := in.now().UTC()
	if f.ReceivedAt.IsZero() {
		f.ReceivedAt = now
	}
	q := store.Quarantined{MailboxID: mb.ID, Origin: f.Origin, Folder: f.Folder, UIDValidity: f.UIDValidity, UID: f.UID,
		SourceName: f.SourceName, RawSHA256: f.Stored.RawSHA256, RawSize: f.Stored.RawSize, Error: f.Err.Error(),
		ReceivedAt: f.ReceivedAt.UTC(), CreatedAt: now}
	err := in.db.Write(ctx, func(tx *store.Tx) error {
		if err := tx.Quarantine(ctx, &q); err != nil {
			return err
		}
		if with != nil {
			if err := with(tx); err != nil {
				return err
			}
		}
		return in.refreshNotice(ctx, tx, mb, q.Error, now)
	})
	if err != nil {
		return store.Quarantined{}, fmt.Errorf("quarantine a message of %s: %w", mb.Address, err)
	}
	in.metrics.quarantine()
	in.log.Warn("message quarantined", "mailbox_id", mb.ID, "outcome", "quarantined", "quarantine_id", q.ID, "origin", f.Origin,
		"folder", f.Folder, "uid", f.UID, "raw_sha256", q.RawSHA256, "err", q.Error)
	return q, nil
}

// noticeErrorBytes bounds the error quoted in a notice.
const noticeErrorBytes = 300

// refreshNotice makes the mailbox's quarantine notice count its open
// quarantined messages (latest is the newest error), or reads it when none
// is open.
func (in *Ingester) refreshNotice(ctx context.Context, tx *store.Tx, mb store.Mailbox, latest string, now time.Time) error {
	n, err := tx.CountQuarantined(ctx, mb.ID)
	if err != nil {
		return err
	}
	if n == 0 {
		return tx.ReadNotices(ctx, mb.ID, store.NoticeQuarantined, now)
	}
	if latest == "" {
		open, err := tx.QuarantinedMessages(ctx, store.QuarantineFilter{MailboxID: mb.ID, Limit: 1})
		if err != nil {
			return err
		}
		if len(open) > 0 {
			latest = open[0].Error
		}
	}
	if len(latest) > noticeErrorBytes {
		latest = store.CleanErrorText(latest[:noticeErrorBytes]) + "…"
	}
	msg := fmt.Sprintf("%s: 1 email could not be stored: %s", mb.Address, latest)
	if n > 1 {
		msg = fmt.Sprintf("%s: %d emails could not be stored; the latest: %s", mb.Address, n, latest)
	}
	return tx.PutUnreadNotice(ctx, &store.Notice{MailboxID: mb.ID, Kind: store.NoticeQuarantined, Message: msg, CreatedAt: now})
}

// IngestOrQuarantine ingests one message (as Ingest) and quarantines it
// when it cannot be stored: the error is then a *QuarantinedError. A
// transient failure is returned as is, nothing quarantined.
func (in *Ingester) IngestOrQuarantine(ctx context.Context, mb store.Mailbox, raw io.Reader, f Failed) (Result, error) {
	s, err := in.Store(raw)
	if err != nil {
		return Result{}, err
	}
	defer in.Release(s, nil)
	res, err := in.ingestStored(ctx, mb, s, time.Time{})
	if err == nil || in.Transient(ctx, err) {
		return res, err
	}
	f.Stored, f.Err = s, err
	q, qerr := in.Quarantine(ctx, mb, f, nil)
	if qerr != nil {
		return Result{}, errors.Join(err, qerr)
	}
	return Result{}, &QuarantinedError{Row: q, Err: err}
}

// ingestStored parses a stored message and applies it in its own
// transaction; the also functions write in that transaction too, after
// the message (a retry resolves its quarantine row).
func (in *Ingester) ingestStored(ctx context.Context, mb store.Mailbox, s Stored, received time.Time, also ...func(tx *store.Tx, res Result) error) (Result, error) {
	p, err := in.Parse(ctx, s)
	if err != nil {
		return Result{}, err
	}
	defer in.Release(Stored{}, p)
	if !received.IsZero() && received.Before(p.ReceivedAt) {
		p.ReceivedAt = received.UTC()
	}
	if err := in.db.Blobs().Sync(); err != nil {
		return Result{}, err
	}
	var res Result
	apply := func(tx *store.Tx) error {
		results, err := in.ApplyBatch(ctx, tx, mb, []*Prepared{p})
		if err != nil {
			return err
		}
		res = results[0]
		for _, f := range also {
			if err := f(tx, res); err != nil {
				return err
			}
		}
		return nil
	}
	err = in.db.Write(ctx, apply)
	if errors.Is(err, store.ErrConflict) {
		// Another writer stored the same message between our check and
		// insert: applied again, it is a duplicate.
		err = in.db.Write(ctx, apply)
	}
	if err != nil {
		return Result{}, fmt.Errorf("ingest into %s: %w", mb.Address, err)
	}
	return res, nil
}

// Retry parses a quarantined message's kept source again and stores it.
// Success resolves the row (and reads the mailbox's notice once no
// quarantined message is open); a failure of the message is recorded on the
// row and returned as a *RetryError; a retry of a resolved row is
// ErrResolved; a missing row is store.ErrNotFound.
func (in *Ingester) Retry(ctx context.Context, id int64) (store.Quarantined, Result, error) {
	q, err := in.db.QuarantinedMessage(ctx, id)
	if err != nil {
		return store.Quarantined{}, Result{}, err
	}
	if !q.Open() {
		return q, Result{}, ErrResolved
	}
	mb, err := in.db.Mailbox(ctx, q.MailboxID)
	if err != nil {
		return q, Result{}, err
	}
	s := Stored{RawSHA256: q.RawSHA256, RawSize: q.RawSize}
	res, err := in.ingestStored(ctx, mb, s, q.ReceivedAt, func(tx *store.Tx, res Result) error {
		now := in.now().UTC()
		if err := tx.ResolveQuarantined(ctx, id, res.MessageID, now); errors.Is(err, store.ErrNotFound) {
			return ErrResolved // resolved meanwhile by another retry: this one rolls back
		} else if err != nil {
			return err
		}
		return in.refreshNotice(ctx, tx, mb, "", now)
	})
	switch {
	case errors.Is(err, ErrResolved):
		q, _ = in.db.QuarantinedMessage(ctx, id)
		return q, Result{}, ErrResolved
	case err != nil && in.Transient(ctx, err):
		return q, Result{}, err
	case err != nil:
		now := in.now().UTC()
		werr := in.db.Write(ctx, func(tx *store.Tx) error {
			if err := tx.RetryFailed(ctx, id, err.Error(), now); err != nil {
				return err
			}
			return in.refreshNotice(ctx, tx, mb, err.Error(), now)
		})
		if werr != nil {
			return q, Result{}, errors.Join(err, werr)
		}
		in.log.Warn("quarantined message failed again", "mailbox_id", mb.ID, "quarantine_id", id, "err", err)
		q, _ = in.db.QuarantinedMessage(ctx, id)
		return q, Result{}, &RetryError{Row: q, Err: err}
	}
	in.log.Info("quarantined message stored", "mailbox_id", mb.ID, "quarantine_id", id, "message_id", res.MessageID)
	q, err = in.db.QuarantinedMessage(ctx, id)
	return q, res, err
}
