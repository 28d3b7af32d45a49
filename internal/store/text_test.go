package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

func TestCleanText(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                     "",
		"plain":                "plain",
		"hello\x00world":       "helloworld",
		"\x00\x00":             "",
		"a\xffb":               "a\uFFFDb",
		"a\xff\xfe\x00b":       "a\uFFFDb",
		"\xc3\x28":             "\uFFFD(",
		"tab\tand\x01ctl":      "tab\tand\x01ctl",
		"ünïcode ✓ \U0001F600": "ünïcode ✓ \U0001F600",
	} {
		if got := store.CleanText(in); got != want {
			t.Errorf("CleanText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMessageIDKeyIsBounded(t *testing.T) {
	t.Parallel()
	short := strings.Repeat("a", store.MaxIndexedIDBytes-2) + "@x"
	if store.MessageIDKey(short) != short || store.DedupeKey(short, "h") != "mid:"+short {
		t.Errorf("an id of %d bytes is not its own key", len(short))
	}
	long := short + "y"
	k := store.MessageIDKey(long)
	if !strings.HasPrefix(k, "sha256 ") || len(k) != 7+64 || k == store.MessageIDKey(long+"z") {
		t.Errorf("key of a long id: %q", k)
	}
	if store.MessageIDKey(" a\x00b@x ") != "ab@x" || store.DedupeKey("", "abc") != "sha256:abc" || store.MessageIDKey("") != "" {
		t.Error("keys are not cleaned like stored text")
	}
	if store.RecoveredDedupeKey("", "mid:f@x") != "recovered:mid:f@x" || store.RecoveredDedupeKey("o@x", "mid:f@x") != "mid:o@x" {
		t.Error("recovered keys")
	}
}

// TestHostileValuesStore writes NUL, invalid UTF-8, a 6,000-byte
// Message-ID and megabytes of text through every insert that takes email
// text, reads them back the same on both databases, and finds the message
// by its long id.
func TestHostileValuesStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
		longID := strings.Repeat("L", 6000) + "@x"
		big := strings.Repeat("big \x00 text ", 200000) // 2.4 MB
		var mb store.Mailbox
		var m store.Message
		err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			if mb, err = tx.CreateMailbox(ctx, "support@example.com", ""); err != nil {
				return err
			}
			tid, err := tx.CreateTicket(ctx, store.Ticket{MailboxID: mb.ID, Subject: "s\x00ubj\xff", RequesterAddress: "ann@x",
				RequesterName: "A\x00nn", CreatedAt: now, MessageCount: 1})
			if err != nil {
				return err
			}
			m = store.Message{MailboxID: mb.ID, TicketID: tid, Direction: "in", Kind: store.KindEmail,
				DedupeKey: store.DedupeKey(longID, ""), MessageID: longID, InReplyTo: "r\x00@x", References: []string{longID, "\xff@x"},
				FromName: "F\x00", FromAddress: "f@x", To: big, Cc: "c\x00", ReplyTo: "r\xff", Subject: "s\x00", ReceivedAt: now,
				TextBody: big, HTMLBody: "<p>\x00</p>", Problems: []string{"p\x00", "q\xff"}, AutoReason: "a\x00",
				Attachments: []store.Attachment{{Filename: "f\x00.txt", ContentType: "text/plain\x00", SHA256: storetest.PutBlob(t, db, "f"), ContentID: "c\x00"}}}
			if err := tx.InsertMessage(ctx, &m); err != nil {
				return err
			}
			return tx.AddNote(ctx, &store.Note{TicketID: tid, Kind: store.NoteInternal, Body: "note \x00 \xff", CreatedAt: now})
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.MessageByDedupeKey(ctx, mb.ID, store.DedupeKey(longID, ""))
		if err != nil {
			t.Fatal(err)
		}
		if got.MessageID != longID || got.Subject != "s" || got.FromName != "F" || got.InReplyTo != "r@x" ||
			got.References[1] != "\uFFFD@x" || got.ReplyTo != "r\uFFFD" || got.TextBody != store.CleanText(big) ||
			got.HTMLBody != "<p></p>" || strings.Join(got.Problems, "|") != "p|q\uFFFD" || got.AutoReason != "a" {
			t.Errorf("stored message differs: %q %q %q %q %q", got.Subject, got.FromName, got.InReplyTo, got.ReplyTo, got.Problems)
		}
		full, err := db.Message(ctx, got.ID)
		if err != nil || len(full.Attachments) != 1 || full.Attachments[0].Filename != "f.txt" || full.Attachments[0].ContentID != "c" {
			t.Errorf("attachments %+v %v", full.Attachments, err)
		}
		tk, err := db.Ticket(ctx, m.TicketID)
		if err != nil || tk.Subject != "subj\uFFFD" || tk.RequesterName != "Ann" {
			t.Errorf("ticket %q %q %v", tk.Subject, tk.RequesterName, err)
		}
		// Threading by the long id, and by an id with a NUL as the parser never gives.
		if id, err := db.TicketForMessageIDs(ctx, mb.ID, []string{"nope\x00", longID}); err != nil || id != m.TicketID {
			t.Errorf("TicketForMessageIDs(long id) = %d, %v", id, err)
		}
		// Lookups with values the database would refuse find nothing, without error.
		if _, err := db.MessageByDedupeKey(ctx, mb.ID, "mid:\x00\xff"); err != store.ErrNotFound {
			t.Errorf("lookup of a refused value: %v", err)
		}
		if _, err := db.RecoveredTwin(ctx, mb.ID, "f\x00@x", "s\x00", now, false); err != store.ErrNotFound {
			t.Errorf("twin lookup: %v", err)
		}
	})
}
