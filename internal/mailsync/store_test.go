package mailsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postdesk/postdesk/internal/imapsync"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

func rawMessage(i int, subject string) []byte {
	return []byte(fmt.Sprintf("From: Customer %d <c%d@customer.example>\r\nTo: support@example.com\r\nSubject: %s\r\n"+
		"Date: %s\r\nMessage-ID: <m%d@customer.example>\r\n\r\nHello %d.\r\n", i, i, subject, "Mon, 07 Dec 2026 10:00:00 +0000", i, i))
}

type storeEnv struct {
	t       *testing.T
	ctx     context.Context
	db      *store.DB
	in      *ingest.Ingester
	metrics *prometheus.Registry
	mb      store.Mailbox
}

func newStoreEnv(t *testing.T, db *store.DB) *storeEnv {
	e := &storeEnv{t: t, ctx: context.Background(), db: db, metrics: prometheus.NewRegistry()}
	e.in = ingest.New(db, ingest.Options{Metrics: ingest.NewMetrics(e.metrics)})
	err := db.Write(e.ctx, func(tx *store.Tx) error {
		var err error
		e.mb, err = tx.CreateMailbox(e.ctx, "support@example.com", "Support")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// sync hands the subjects to a syncStore as UIDs first, first+1, ... of
// INBOX and flushes.
func (e *storeEnv) sync(first int, subjects ...string) error {
	e.t.Helper()
	s := &syncStore{db: e.db, ingest: e.in, mailbox: e.mb, now: time.Now, ahead: IMAP{}.Ahead}
	defer s.close()
	if _, err := (imapStore{s}).Checkpoint(e.ctx, "INBOX"); err != nil {
		e.t.Fatal(err)
	}
	for i, subj := range subjects {
		uid := first + i
		m := &imapsync.Message{Folder: "INBOX", UIDValidity: 7, UID: uint32(uid), Body: bytes.NewReader(rawMessage(uid, subj))}
		if err := (imapStore{s}).Handle(e.ctx, m); err != nil {
			return err
		}
	}
	return s.Flush(e.ctx)
}

func (e *storeEnv) quarantined(all bool) []store.Quarantined {
	e.t.Helper()
	list, err := e.db.QuarantinedMessages(e.ctx, store.QuarantineFilter{MailboxID: e.mb.ID, All: all, Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

func (e *storeEnv) notices() []store.Notice {
	e.t.Helper()
	list, err := e.db.Notices(e.ctx, store.NoticeFilter{MailboxID: e.mb.ID, UnreadOnly: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

// A message the database refuses does not block the batch or the mailbox:
// the others are stored, it is quarantined with its source, the checkpoint
// moves past it, one notice counts it; after the cause is fixed, Retry
// stores it and the notice goes.
func TestSyncStoreQuarantinesRefusedMessage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newStoreEnv(t, db)
		drop := storetest.PoisonTrigger(t, db)
		// A batch of 100 (a full batch of 64 and a partial one), two poisoned.
		var subjects []string
		for i := 1; i <= 100; i++ {
			s := fmt.Sprintf("Question %d", i)
			if i == 3 || i == 70 {
				s = fmt.Sprintf("poison pill %d", i)
			}
			subjects = append(subjects, s)
		}
		if err := e.sync(1, subjects...); err != nil {
			t.Fatalf("sync: %v", err)
		}
		if n, _ := db.CountMessages(e.ctx, e.mb.ID); n != 98 {
			t.Fatalf("%d messages stored, want 98", n)
		}
		if cp, _ := IMAPCheckpoint(e.ctx, db, e.mb.ID, "INBOX"); cp.LastUID != 100 || cp.UIDValidity != 7 {
			t.Fatalf("checkpoint = %+v, want UID 100", cp)
		}
		q := e.quarantined(false)
		if len(q) != 2 {
			t.Fatalf("quarantined = %+v, want 2", q)
		}
		for _, row := range q {
			if row.Origin != store.OriginSync || row.Folder != "INBOX" || row.UIDValidity != 7 || (row.UID != 3 && row.UID != 70) ||
				row.State != store.QuarantineOpen || !strings.Contains(row.Error, "poison") {
				t.Errorf("quarantine row = %+v", row)
			}
			f, err := db.Blobs().Open(context.Background(), row.RawSHA256)
			if err != nil {
				t.Fatalf("source of quarantined UID %d: %v", row.UID, err)
			}
			var b bytes.Buffer
			b.ReadFrom(f)
			f.Close()
			if b.String() != string(rawMessage(int(row.UID), fmt.Sprintf("poison pill %d", row.UID))) || int64(b.Len()) != row.RawSize {
				t.Errorf("kept source of UID %d differs from the fetched message", row.UID)
			}
		}
		notices := e.notices()
		if len(notices) != 1 || notices[0].Kind != store.NoticeQuarantined ||
			!strings.Contains(notices[0].Message, "2 emails could not be stored") || !strings.Contains(notices[0].Message, "poison") {
			t.Fatalf("notices = %+v; want one counting 2 quarantined emails", notices)
		}
		if got := gathered(t, e.metrics, "postdesk_messages_quarantined_total"); got != 2 {
			t.Errorf("postdesk_messages_quarantined_total = %v, want 2", got)
		}

		// Still refused: the retry records the new failure.
		_, _, err := e.in.Retry(e.ctx, q[0].ID)
		var re *ingest.RetryError
		if !errors.As(err, &re) || re.Row.State != store.QuarantineRetried || re.Row.Attempts != 2 {
			t.Fatalf("retry while refused: %v (%+v)", err, re)
		}
		// Fixed: both retries store their message; the notice is read.
		drop()
		for i, row := range q {
			got, res, err := e.in.Retry(e.ctx, row.ID)
			if err != nil || got.State != store.QuarantineResolved || got.MessageID == 0 || res.Outcome != ingest.NewTicket {
				t.Fatalf("retry %d after the fix: %+v, %+v, %v", row.ID, got, res, err)
			}
			if n := len(e.notices()); (i == 0 && n != 1) || (i == 1 && n != 0) {
				t.Fatalf("after %d retries: %d unread notices", i+1, n)
			}
			m, err := db.Message(e.ctx, got.MessageID)
			if err != nil || m.Subject != fmt.Sprintf("poison pill %d", row.UID) || m.RawSHA256 != row.RawSHA256 {
				t.Fatalf("stored message = %+v, %v", m, err)
			}
		}
		if len(e.notices()) != 0 || len(e.quarantined(false)) != 0 || len(e.quarantined(true)) != 2 {
			t.Fatal("after every retry: notices or open quarantine rows are left")
		}
		if _, _, err := e.in.Retry(e.ctx, q[0].ID); !errors.Is(err, ingest.ErrResolved) {
			t.Fatalf("retry of a resolved row: %v, want ErrResolved", err)
		}
		if n, _ := db.CountMessages(e.ctx, e.mb.ID); n != 100 {
			t.Fatalf("%d messages stored, want 100", n)
		}
	})
}

// A flood of refused messages makes one notice, not one per message; the
// same message quarantined twice (a rescan) is one row with two attempts.
func TestSyncStoreQuarantineFlood(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newStoreEnv(t, db)
		storetest.PoisonTrigger(t, db)
		var subjects []string
		for i := 0; i < 150; i++ {
			subjects = append(subjects, "poison flood")
		}
		if err := e.sync(1, subjects...); err != nil {
			t.Fatal(err)
		}
		if err := e.sync(151, "fine"); err != nil {
			t.Fatal(err)
		}
		if n, _ := db.CountMessages(e.ctx, e.mb.ID); n != 1 {
			t.Fatalf("%d messages stored, want 1", n)
		}
		if cp, _ := IMAPCheckpoint(e.ctx, db, e.mb.ID, "INBOX"); cp.LastUID != 151 {
			t.Fatalf("checkpoint = %+v", cp)
		}
		notices := e.notices()
		if len(notices) != 1 || !strings.Contains(notices[0].Message, "150 emails could not be stored") {
			t.Fatalf("notices = %+v", notices)
		}
		// A rescan (UIDVALIDITY reset) fetches UID 1 again: same row, one more attempt.
		if err := db.Write(e.ctx, func(tx *store.Tx) error {
			return tx.SetSyncCursor(e.ctx, e.mb.ID, "INBOX", string(IMAPCursor(7, 0)), time.Now())
		}); err != nil {
			t.Fatal(err)
		}
		if err := e.sync(1, "poison flood"); err != nil {
			t.Fatal(err)
		}
		q := e.quarantined(false)
		if len(q) != 150 {
			t.Fatalf("%d quarantine rows, want 150", len(q))
		}
		var again int
		for _, row := range q {
			if row.UID == 1 && row.Attempts == 2 {
				again++
			}
		}
		if again != 1 {
			t.Errorf("the refetched message was not recorded as a second attempt on its row")
		}
	})
}

// A transient failure (the database gone) quarantines nothing and moves no
// checkpoint: the session fails and refetches.
func TestSyncStoreTransientFailureQuarantinesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newStoreEnv(t, db)
		s := &syncStore{db: e.db, ingest: e.in, mailbox: e.mb, now: time.Now, ahead: IMAP{}.Ahead}
		if _, err := (imapStore{s}).Checkpoint(e.ctx, "INBOX"); err != nil {
			t.Fatal(err)
		}
		for uid := 1; uid <= 3; uid++ {
			if err := (imapStore{s}).Handle(e.ctx, &imapsync.Message{Folder: "INBOX", UIDValidity: 7, UID: uint32(uid), Body: bytes.NewReader(rawMessage(uid, "hi"))}); err != nil {
				t.Fatal(err)
			}
		}
		db.SQL().Close() // the writer goes away
		if err := s.Flush(e.ctx); err == nil {
			t.Fatal("flush with the database closed succeeded")
		}
		s.close()
		if q, _ := db.QuarantinedMessages(e.ctx, store.QuarantineFilter{}); len(q) != 0 {
			t.Fatalf("quarantined on a transient failure: %+v", q)
		}
		if cp, _ := IMAPCheckpoint(e.ctx, db, e.mb.ID, "INBOX"); cp.LastUID != 0 {
			t.Fatalf("checkpoint moved to %d on a failure", cp.LastUID)
		}
	})
}

// gathered is a counter's value as /metrics would show it.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s is not registered", name)
	return 0
}

// When a batch is committed one message at a time and that stops at a
// failure, the messages committed before it are counted in
// postdesk_mailbox_messages_fetched_total all the same (they were not,
// and bench-sync waited for the last message forever).
func TestSyncStoreCountsWhatCommittedBeforeAFailure(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	e := newStoreEnv(t, db)
	storetest.PoisonTrigger(t, db)
	if _, err := db.SQL().ExecContext(e.ctx, `CREATE TRIGGER no_quarantine BEFORE INSERT ON quarantine
		BEGIN SELECT RAISE(ABORT, 'this database refuses the quarantine too'); END`); err != nil {
		t.Fatal(err)
	}
	counted := 0
	s := &syncStore{db: e.db, ingest: e.in, mailbox: e.mb, now: time.Now, ahead: IMAP{}.Ahead,
		onBatch: func(results []ingest.Result) { counted += len(results) }}
	defer s.close()
	for uid, subject := range []string{"one", "two", "poison pill", "four"} {
		m := &imapsync.Message{Folder: "INBOX", UIDValidity: 7, UID: uint32(uid + 1), Body: bytes.NewReader(rawMessage(uid+1, subject))}
		if err := (imapStore{s}).Handle(e.ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(e.ctx); err == nil || !strings.Contains(err.Error(), "refuses the quarantine") {
		t.Fatalf("flush: %v, want the quarantine's failure", err)
	}
	if n, _ := db.CountMessages(e.ctx, e.mb.ID); n != 2 || counted != 2 {
		t.Errorf("%d messages committed, %d counted; want 2 and 2", n, counted)
	}
}
