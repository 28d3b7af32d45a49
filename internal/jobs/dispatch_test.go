package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/jobs"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// countingConsumer counts, once its transaction has committed, how often
// it heard each event; it fails (rolling the batch back) for the ticket ids
// in fail.
type countingConsumer struct {
	mu    sync.Mutex
	seen  map[int64]int
	fail  map[int64]bool
	heard chan int64
}

func newCounting() *countingConsumer {
	return &countingConsumer{seen: map[int64]int{}, fail: map[int64]bool{}, heard: make(chan int64, 10000)}
}

func (c *countingConsumer) Name() string { return "counting" }

func (c *countingConsumer) Consume(ctx context.Context, tx *store.Tx, events []store.Event) error {
	c.mu.Lock()
	for _, e := range events {
		if c.fail[e.TicketID] {
			c.mu.Unlock()
			return fmt.Errorf("refuse ticket %d", e.TicketID)
		}
	}
	c.mu.Unlock()
	tx.AfterCommit(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, e := range events {
			c.seen[e.ID]++
			c.heard <- e.ID
		}
	})
	return nil
}

func addEvents(t *testing.T, db *store.DB, n int, ticket int64) []int64 {
	t.Helper()
	var ids []int64
	err := db.Write(context.Background(), func(tx *store.Tx) error {
		for range n {
			e := store.Event{Kind: store.EventTicketCreated, TicketID: ticket}
			if err := tx.AddEvent(context.Background(), &e); err != nil {
				return err
			}
			ids = append(ids, e.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// Two dispatchers (two serve processes) running at once while events are
// written: every consumer hears every event exactly once.
func TestDispatcherExactlyOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := newCounting()
		var ds []*jobs.Dispatcher
		for range 2 {
			d, err := jobs.NewDispatcher(jobs.DispatcherOptions{DB: db, Interval: 5 * time.Millisecond, Batch: 7})
			if err != nil {
				t.Fatal(err)
			}
			d.Register(c)
			ds = append(ds, d)
		}
		// Both race on each batch: each loops Dispatch as fast as it can.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for _, d := range ds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := d.Dispatch(ctx); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		var want []int64
		for i := range 40 {
			want = append(want, addEvents(t, db, 5, int64(i+1))...)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			c.mu.Lock()
			n := len(c.seen)
			c.mu.Unlock()
			if n == len(want) || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("dispatch: %v", err)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, id := range want {
			if c.seen[id] != 1 {
				t.Errorf("event %d heard %d times, want once", id, c.seen[id])
			}
		}
		if len(c.seen) != len(want) {
			t.Errorf("heard %d events, want %d", len(c.seen), len(want))
		}
	})
}

// A commit that adds events wakes a started dispatcher at once, long
// before its periodic fallback.
func TestDispatcherWokenAfterCommit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newCounting()
		d, err := jobs.NewDispatcher(jobs.DispatcherOptions{DB: db, Interval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		d.Register(c)
		db.OnEventsCommitted(d.Wake)
		d.Start()
		defer d.Stop(context.Background())
		time.Sleep(50 * time.Millisecond) // the first look (at start) is over
		id := addEvents(t, db, 1, 1)[0]
		select {
		case got := <-c.heard:
			if got != id {
				t.Fatalf("heard event %d, want %d", got, id)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the dispatcher was not woken by the commit")
		}
	})
}

// An event a consumer cannot take holds up no other, is offered again, and
// is given up after MaxAttempts.
func TestDispatcherIsolatesAFailingEvent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := newCounting()
		c.fail[2] = true
		d, err := jobs.NewDispatcher(jobs.DispatcherOptions{DB: db, MaxAttempts: 3})
		if err != nil {
			t.Fatal(err)
		}
		d.Register(c)
		good := addEvents(t, db, 1, 1)
		bad := addEvents(t, db, 1, 2)[0]
		good = append(good, addEvents(t, db, 1, 3)...)
		if n, err := d.Dispatch(ctx); err != nil || n != 2 {
			t.Fatalf("Dispatch = %d, %v; want the 2 good events", n, err)
		}
		for _, id := range good {
			if c.seen[id] != 1 {
				t.Fatalf("good event %d heard %d times", id, c.seen[id])
			}
		}
		if n, err := d.Dispatch(ctx); err != nil || n != 0 {
			t.Fatalf("second Dispatch = %d, %v; want the failing event kept", n, err)
		}
		// The third failure gives it up: marked dispatched, never heard.
		if n, err := d.Dispatch(ctx); err != nil || n != 1 {
			t.Fatalf("third Dispatch = %d, %v; want the failing event given up", n, err)
		}
		if c.seen[bad] != 0 {
			t.Fatal("the failing event was heard")
		}
		err = db.Write(ctx, func(tx *store.Tx) error {
			left, err := tx.ClaimEvents(ctx, 10)
			if len(left) != 0 {
				return errors.New("events left undispatched")
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// notingConsumer writes a note on the event's ticket, in the dispatch's
// transaction.
type notingConsumer struct{}

func (notingConsumer) Name() string { return "noting" }

func (notingConsumer) Consume(ctx context.Context, tx *store.Tx, events []store.Event) error {
	for _, e := range events {
		if err := tx.AddNote(ctx, &store.Note{TicketID: e.TicketID, Kind: store.NoteEvent, Body: fmt.Sprintf("heard event %d", e.ID), CreatedAt: time.Now()}); err != nil {
			return err
		}
	}
	return nil
}

// An event given up because one consumer keeps failing still reaches the
// others, once: a failing webhook consumer does not cost an event its
// agents' notifications. The failing consumer's writes are undone, even
// after a statement the database refused.
func TestDispatcherGivesUpOnlyTheFailingConsumer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var ticket int64
		if err := db.Write(ctx, func(tx *store.Tx) error {
			mb, err := tx.CreateMailbox(ctx, "support@example.com", "")
			if err != nil {
				return err
			}
			ticket, err = tx.CreateTicket(ctx, store.Ticket{MailboxID: mb.ID, Subject: "Printer on fire", RequesterAddress: "ann@customer.test", CreatedAt: time.Now()})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		d, err := jobs.NewDispatcher(jobs.DispatcherOptions{DB: db, MaxAttempts: 3})
		if err != nil {
			t.Fatal(err)
		}
		d.Register(failingWriter{})
		d.Register(notingConsumer{})
		id := addEvents(t, db, 1, ticket)[0]
		for i, want := range []int{0, 0, 1} {
			if n, err := d.Dispatch(ctx); err != nil || n != want {
				t.Fatalf("Dispatch %d = %d, %v; want %d", i+1, n, err, want)
			}
		}
		notes, err := db.TicketNotes(ctx, ticket)
		if err != nil {
			t.Fatal(err)
		}
		if len(notes) != 1 || notes[0].Body != fmt.Sprintf("heard event %d", id) {
			t.Errorf("notes = %+v, want the noting consumer's one note", notes)
		}
	})
}

// failingWriter writes a note, then fails on a statement the database
// refuses (a note on a ticket that does not exist): on PostgreSQL that
// aborts the transaction, which only its savepoint can recover.
type failingWriter struct{}

func (failingWriter) Name() string { return "failing" }

func (failingWriter) Consume(ctx context.Context, tx *store.Tx, events []store.Event) error {
	for _, e := range events {
		if err := tx.AddNote(ctx, &store.Note{TicketID: e.TicketID, Kind: store.NoteEvent, Body: "undone", CreatedAt: time.Now()}); err != nil {
			return err
		}
		if err := tx.AddNote(ctx, &store.Note{TicketID: e.TicketID + 1000, Kind: store.NoteEvent, Body: "refused", CreatedAt: time.Now()}); err != nil {
			return err
		}
	}
	return nil
}
