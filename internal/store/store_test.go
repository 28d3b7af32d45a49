package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

func TestMigrateIsIdempotent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		n, err := db.Migrate(ctx)
		if err != nil || n != 0 {
			t.Fatalf("second migrate applied %d, err %v; want 0, nil", n, err)
		}
		if err := db.CheckSchema(ctx); err != nil {
			t.Fatalf("check schema: %v", err)
		}
	})
}

func TestTicketsAndMessages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
		var ticketID int64
		var mb store.Mailbox
		err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			mb, err = tx.CreateMailbox(ctx, "Support@Example.com", "Support")
			if err != nil {
				return err
			}
			ticketID, err = tx.CreateTicket(ctx, store.Ticket{MailboxID: mb.ID, Subject: "Printer on fire", RequesterAddress: "ann@customer.test", RequesterName: "Ann", CreatedAt: now, MessageCount: 1})
			if err != nil {
				return err
			}
			return tx.InsertMessage(ctx, &store.Message{MailboxID: mb.ID, TicketID: ticketID, Direction: "in", Kind: store.KindEmail,
				DedupeKey: "mid:a@x", MessageID: "a@x", Subject: "Printer on fire", ReceivedAt: now, References: []string{"r1@x", "r2@x"},
				Problems: []string{"p1", "p2"}, Attachments: []store.Attachment{{Filename: "a.pdf", ContentType: "application/pdf", Size: 3, SHA256: storetest.PutBlob(t, db, "pdf")}}})
		})
		if err != nil {
			t.Fatal(err)
		}
		if mb.Address != "support@example.com" {
			t.Errorf("address = %q, want lowercase", mb.Address)
		}
		// Dedupe key is unique per mailbox.
		err = db.Write(ctx, func(tx *store.Tx) error {
			return tx.InsertMessage(ctx, &store.Message{MailboxID: mb.ID, Direction: "in", Kind: store.KindEmail, DedupeKey: "mid:a@x", ReceivedAt: now})
		})
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate insert: err = %v, want ErrConflict", err)
		}
		got, err := db.TicketForMessageIDs(ctx, mb.ID, []string{"zzz", "a@x"})
		if err != nil || got != ticketID {
			t.Fatalf("thread lookup = %d, %v; want %d", got, err, ticketID)
		}
		if _, err := db.TicketForMessageIDs(ctx, mb.ID, []string{"nope"}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("thread lookup of unknown id: %v, want ErrNotFound", err)
		}
		msgs, err := db.TicketMessages(ctx, ticketID)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("ticket messages = %d, %v", len(msgs), err)
		}
		m := msgs[0]
		if len(m.References) != 2 || len(m.Problems) != 2 || len(m.Attachments) != 1 || !m.ReceivedAt.Equal(now) {
			t.Errorf("round trip lost data: %+v", m)
		}
		// Search is case-insensitive (search_test.go has the rest).
		for q, want := range map[string]int{"printer": 1, "ANN@": 1, "nothing": 0} {
			n, err := db.CountTickets(ctx, store.TicketFilter{Search: mustParse(t, q)})
			if err != nil || n != want {
				t.Errorf("count %q = %d, %v; want %d", q, n, err, want)
			}
		}
		// A customer message reopens a solved ticket.
		err = db.Write(ctx, func(tx *store.Tx) error {
			if _, err := tx.SetTicketStatus(ctx, ticketID, store.StatusSolved, now); err != nil {
				return err
			}
			prev, err := tx.RecordCustomerMessage(ctx, ticketID, now.Add(time.Hour))
			if err == nil && prev != store.StatusSolved {
				t.Errorf("RecordCustomerMessage reports %q before, want solved", prev)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		tk, err := db.Ticket(ctx, ticketID)
		if err != nil || tk.Status != store.StatusOpen || tk.MessageCount != 2 || !tk.UpdatedAt.Equal(now.Add(time.Hour)) || tk.MailboxAddress != mb.Address {
			t.Fatalf("ticket after reply = %+v, %v", tk, err)
		}
		if _, err := db.Ticket(ctx, 9999); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing ticket: %v", err)
		}
	})
}

func TestWriteRollsBack(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boom := errors.New("boom")
		err := db.Write(ctx, func(tx *store.Tx) error {
			if _, err := tx.CreateMailbox(ctx, "a@example.com", ""); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
		if _, err := db.MailboxByAddress(ctx, "a@example.com"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("rolled-back mailbox exists: %v", err)
		}
	})
}

// A transaction whose context ends rolls back: at its next statement, or
// at its commit when it has none left (on SQLite the context is checked
// between statements rather than watched: Write).
func TestWriteContextEnds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		for _, more := range []bool{true, false} {
			ctx, cancel := context.WithCancel(context.Background())
			address := fmt.Sprintf("more-%v@example.com", more)
			err := db.Write(ctx, func(tx *store.Tx) error {
				if _, err := tx.CreateMailbox(ctx, address, ""); err != nil {
					return err
				}
				cancel()
				if more {
					_, err := tx.CreateMailbox(ctx, "second-"+address, "")
					return err
				}
				return nil
			})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("more statements %v: Write returned %v, want context.Canceled", more, err)
			}
			if _, err := db.MailboxByAddress(context.Background(), address); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("more statements %v: the mailbox of a cancelled transaction exists (%v)", more, err)
			}
			if err := db.Write(ctx, func(*store.Tx) error { return nil }); !errors.Is(err, context.Canceled) {
				t.Errorf("a transaction begun with a cancelled context: %v", err)
			}
		}
	})
}

// On SQLite, a Write whose context ends while another transaction holds
// the one writer connection stops waiting then (found by a reviewer: it
// waited for the other to finish).
func TestWriteStopsWaitingForTheWriter(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		if db.Dialect() != "sqlite" {
			t.Skip("PostgreSQL's writers do not wait for one connection")
		}
		held, release := make(chan struct{}), make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- db.Write(context.Background(), func(*store.Tx) error {
				close(held)
				select { // released at once, or after 2 s if Write waits for it
				case <-release:
				case <-time.After(2 * time.Second):
				}
				return nil
			})
		}()
		<-held
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := db.Write(ctx, func(*store.Tx) error { return nil })
		waited := time.Since(start)
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !errors.Is(err, context.DeadlineExceeded) || waited > time.Second {
			t.Errorf("Write with a 100 ms deadline behind a held writer: %v after %v", err, waited)
		}
	})
}

func TestBlobs(t *testing.T) {
	b, err := store.OpenBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sum, n, err := b.Put(strings.NewReader("hello"))
	if err != nil || n != 5 || sum != "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" {
		t.Fatalf("put = %s %d %v", sum, n, err)
	}
	sum2, _, err := b.Put(strings.NewReader("hello"))
	if err != nil || sum2 != sum {
		t.Fatalf("second put = %s %v", sum2, err)
	}
	f, err := b.Open(context.Background(), sum)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := b.Open(context.Background(), "../../etc/passwd"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("open of a bad name: %v", err)
	}
}

// A ticket's messages are in time order by the second, and within a
// second in the order they were stored: a fetched answer's INTERNALDATE
// (whole seconds) may be earlier than the reply it answers within their
// second, and it still shows below it.
func TestTicketMessagesOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
		var ticketID int64
		err := db.Write(ctx, func(tx *store.Tx) error {
			mb, err := tx.CreateMailbox(ctx, "support@example.com", "")
			if err != nil {
				return err
			}
			if ticketID, err = tx.CreateTicket(ctx, store.Ticket{MailboxID: mb.ID, Subject: "Order", RequesterAddress: "ann@x.test", CreatedAt: at}); err != nil {
				return err
			}
			// Stored in this order, at these times.
			for _, m := range []struct {
				name, dir string
				at        time.Time
			}{
				{"question", "in", at},
				{"reply", "out", at.Add(5*time.Second + 700*time.Millisecond)},
				{"answer", "in", at.Add(5 * time.Second)},
				{"late-import", "in", at.Add(3 * time.Second)},
				{"next", "in", at.Add(6 * time.Second)},
			} {
				kind := store.KindEmail
				if m.dir == "out" {
					kind = store.KindReply
				}
				if err := tx.InsertMessage(ctx, &store.Message{MailboxID: mb.ID, TicketID: ticketID, Direction: m.dir, Kind: kind,
					DedupeKey: "mid:" + m.name, MessageID: m.name, ReceivedAt: m.at}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := db.TicketMessages(ctx, ticketID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range msgs {
			got = append(got, m.MessageID)
		}
		if want := []string{"question", "late-import", "reply", "answer", "next"}; !slices.Equal(got, want) {
			t.Errorf("messages in order %v, want %v", got, want)
		}
	})
}

// Unavailable is the database out of reach, not any network error: a
// request's deadline, an HTTP call of Postdesk's own or a name it looked
// up are 500s (or their own answers), not "the database is out of reach".
func TestUnavailable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&pgconn.ConnectError{Config: &pgconn.Config{}}, true},
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "08006"}, true},
		{&pgconn.PgError{Code: "23505"}, false},
		{fmt.Errorf("load session: %w", io.ErrUnexpectedEOF), true},
		{&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, true},
		{context.DeadlineExceeded, false},
		{fmt.Errorf("query: %w", context.Canceled), false},
		{&url.Error{Op: "Post", URL: "https://hooks.example.com/", Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}, false},
		{&net.DNSError{Err: "no such host", Name: "login.example.com", IsNotFound: true}, false},
		{errors.New("boom"), false},
		{nil, false},
	} {
		if got := store.Unavailable(c.err); got != c.want {
			t.Errorf("Unavailable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
