package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// An agent's events gather into one batch due a window after the first;
// a batch is taken once, even by two transactions at the same moment.
func TestPendingNotificationsBatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newOutboxFixture(t, db)
		var ann store.User
		if err := db.Write(ctx, func(tx *store.Tx) (err error) {
			ann, err = tx.CreateUser(ctx, store.User{Email: "ann@helpdesk.test", Role: store.RoleAgent, PasswordHash: "x"})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		add := func(event int64, at time.Time) (store.PendingNotification, bool) {
			t.Helper()
			p := store.PendingNotification{UserID: ann.ID, EventID: event, Kind: store.EventTicketCreated, TicketID: f.ticketID,
				MailboxID: f.mb.ID, CreatedAt: at}
			var added bool
			if err := db.Write(ctx, func(tx *store.Tx) (err error) {
				added, err = tx.AddPendingNotification(ctx, &p, time.Minute)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return p, added
		}
		p1, ok1 := add(1, f.now)
		p2, ok2 := add(2, f.now.Add(30*time.Second))
		_, again := add(2, f.now.Add(40*time.Second))
		if !ok1 || !ok2 || again {
			t.Fatalf("added = %v %v, the same event again = %v", ok1, ok2, again)
		}
		if want := f.now.Add(time.Minute); !p1.DueAt.Equal(want) || !p2.DueAt.Equal(want) {
			t.Errorf("due = %v and %v, want both %v (one batch)", p1.DueAt, p2.DueAt, want)
		}
		if next, err := db.NextNotificationDue(ctx); err != nil || !next.Equal(f.now.Add(time.Minute)) {
			t.Errorf("next due = %v, %v", next, err)
		}
		if due, err := db.DueNotificationUsers(ctx, f.now.Add(59*time.Second)); err != nil || len(due) != 0 {
			t.Errorf("due before the window ends: %v, %v", due, err)
		}
		at := f.now.Add(time.Minute)
		if due, err := db.DueNotificationUsers(ctx, at); err != nil || len(due) != 1 || due[0] != ann.ID {
			t.Fatalf("due at the window's end: %v, %v", due, err)
		}
		// Two takers at once: the batch is taken exactly once.
		var mu sync.Mutex
		var taken []store.PendingNotification
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := db.Write(ctx, func(tx *store.Tx) error {
					got, err := tx.TakeNotifications(ctx, ann.ID, at)
					if err != nil {
						return err
					}
					time.Sleep(50 * time.Millisecond) // hold the rows while the other tries
					mu.Lock()
					taken = append(taken, got...)
					mu.Unlock()
					return nil
				})
				if err != nil && !errors.Is(err, store.ErrTaken) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if len(taken) != 2 || taken[0].EventID == taken[1].EventID {
			t.Errorf("taken = %+v, want events 1 and 2 once", taken)
		}
		if left, err := db.PendingNotifications(ctx, ann.ID); err != nil || len(left) != 0 {
			t.Errorf("left = %v, %v", left, err)
		}
		// A new event after the batch went starts a new window.
		p3, _ := add(3, at.Add(time.Second))
		if !p3.DueAt.Equal(at.Add(time.Second + time.Minute)) {
			t.Errorf("new batch due %v", p3.DueAt)
		}
	})
}

// A notice's email is decided once; an earlier unread notice of the same
// mailbox and kind that was emailed makes the next a repeat, until the
// mailbox was restored or the notice read.
func TestNoticeEmailDecidedOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newOutboxFixture(t, db)
		notice := func(kind string, at time.Time) store.Notice {
			t.Helper()
			n := store.Notice{MailboxID: f.mb.ID, Kind: kind, Message: "support@example.com needs reauthentication", CreatedAt: at}
			if err := db.Write(ctx, func(tx *store.Tx) error { return tx.AddNotice(ctx, &n) }); err != nil {
				t.Fatal(err)
			}
			return n
		}
		n1 := notice("needs_reauth", f.now)
		todo, err := db.NoticesToEmail(ctx, 10)
		if err != nil || len(todo) != 1 || todo[0].ID != n1.ID {
			t.Fatalf("to email: %+v, %v", todo, err)
		}
		decide := func(n store.Notice, e store.NoticeEmail) error {
			return db.Write(ctx, func(tx *store.Tx) error { return tx.DecideNoticeEmail(ctx, n.ID, e) })
		}
		if err := decide(n1, store.NoticeEmail{State: store.EmailQueued, MailboxID: f.mb.ID, Count: 2}); err != nil {
			t.Fatal(err)
		}
		if err := decide(n1, store.NoticeEmail{State: store.EmailQueued}); !errors.Is(err, store.ErrTaken) {
			t.Errorf("deciding again: %v, want ErrTaken", err)
		}
		all, err := db.Notices(ctx, store.NoticeFilter{})
		if err != nil || len(all) != 1 || all[0].Email != (store.NoticeEmail{State: store.EmailQueued, MailboxID: f.mb.ID, Count: 2}) {
			t.Errorf("notices: %+v, %v", all, err)
		}
		if todo, _ := db.NoticesToEmail(ctx, 10); len(todo) != 0 {
			t.Errorf("still to email: %+v", todo)
		}
		since := f.now.Add(-time.Hour)
		n2 := notice("needs_reauth", f.now.Add(time.Second))
		if rep, err := db.NoticeAlreadyEmailed(ctx, n2, since); err != nil || !rep {
			t.Errorf("second notice of one refusal: repeat = %v, %v", rep, err)
		}
		if rep, _ := db.NoticeAlreadyEmailed(ctx, n2, f.now.Add(time.Minute)); rep {
			t.Error("an emailed notice older than the window counts as a repeat")
		}
		if rep, _ := db.NoticeAlreadyEmailed(ctx, notice("expiring", f.now), since); rep {
			t.Error("another kind counts as a repeat")
		}
		notice(store.NoticeRestored, f.now.Add(2*time.Second))
		n3 := notice("needs_reauth", f.now.Add(3*time.Second))
		if rep, _ := db.NoticeAlreadyEmailed(ctx, n3, since); rep {
			t.Error("a refusal after the mailbox was restored counts as a repeat")
		}
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.MarkNoticeRead(ctx, n1.ID, f.now) }); err != nil {
			t.Fatal(err)
		}
		if rep, _ := db.NoticeAlreadyEmailed(ctx, n2, since); rep {
			t.Error("a dismissed notice counts as a repeat")
		}
	})
}

// A reminder is recorded once per mailbox, deadline and lead.
func TestRemindersOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newOutboxFixture(t, db)
		due := f.now.Add(72 * time.Hour)
		r := store.Reminder{MailboxID: f.mb.ID, DueAt: due, LeadDays: 3, CreatedAt: f.now,
			Email: store.NoticeEmail{State: store.EmailQueued, MailboxID: f.mb.ID, Count: 1}}
		for i, want := range []bool{true, false} {
			var added bool
			if err := db.Write(ctx, func(tx *store.Tx) (err error) { added, err = tx.AddReminder(ctx, r); return err }); err != nil {
				t.Fatal(err)
			}
			if added != want {
				t.Errorf("try %d: added = %v", i, added)
			}
		}
		for _, c := range []struct {
			due  time.Time
			lead int
			want bool
		}{{due, 3, true}, {due, 1, false}, {due.Add(time.Hour), 3, false}} {
			if got, err := db.HasReminder(ctx, f.mb.ID, c.due, c.lead); err != nil || got != c.want {
				t.Errorf("HasReminder(%v, %d) = %v, %v", c.due, c.lead, got, err)
			}
		}
		list, err := db.Reminders(ctx, f.mb.ID)
		if err != nil || len(list) != 1 || !list[0].DueAt.Equal(due) || list[0].Email.State != store.EmailQueued {
			t.Errorf("reminders: %+v, %v", list, err)
		}
	})
}
