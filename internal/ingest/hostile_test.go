package ingest_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

var hostileNow = time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC)

// hostileSetup makes the mailbox the hostile messages are sent to, with
// Paul, who forwards them, as an agent (so forward recovery runs on them).
func hostileSetup(t testing.TB, db *store.DB) (store.Mailbox, *ingest.Ingester) {
	t.Helper()
	ctx := context.Background()
	mb := newMailbox(t, db, "support@postdesk.example")
	err := db.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.CreateUser(ctx, store.User{Email: "paul.agent@postdesk.example", Role: store.RoleAgent, PasswordHash: "x"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return mb, ingest.New(db, ingest.Options{Now: func() time.Time { return hostileNow }})
}

// TestHostileMessagesAreStored: every email that once stopped a mailbox
// (NUL, a 6,000-byte Message-ID, 3,000 addresses, a 2 MB header, forwards
// cut off at several depths) is stored on both databases with what could
// be read of it, threading by a long Message-ID works, and a second pass
// changes nothing.
func TestHostileMessagesAreStored(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb, in := hostileSetup(t, db)
		results := map[string]ingest.Result{}
		for _, m := range mailtest.Hostile() {
			res, err := in.Ingest(ctx, mb, bytes.NewReader(m.Raw))
			if err != nil {
				t.Fatalf("%s: %v", m.Name, err)
			}
			if res.MessageID == 0 {
				t.Errorf("%s: not stored: %+v", m.Name, res)
			}
			if res.Outcome == ingest.Duplicate && m.Name != "18_original_long_id_direct.eml" && !strings.HasPrefix(m.Name, "1") {
				t.Errorf("%s: a duplicate on the first pass: %s", m.Name, res)
			}
			results[m.Name] = res
			t.Logf("%s: %s", m.Name, res)
		}
		msg := func(id string) store.Message {
			t.Helper()
			m, err := db.MessageByDedupeKey(ctx, mb.ID, store.DedupeKey(id, ""))
			if err != nil {
				t.Fatalf("message <%.40s>: %v", id, err)
			}
			return m
		}

		// NUL variants: stored without the NUL, the same on both databases.
		if m := msg("nul-subject@customer.example"); m.Subject != "helloworld" {
			t.Errorf("subject %q", m.Subject)
		}
		if tk, _ := db.Ticket(ctx, results["02_nul_subject.eml"].TicketID); tk.Subject != "helloworld" {
			t.Errorf("ticket subject %q", tk.Subject)
		}
		if m := msg("nul-qp@customer.example"); !strings.Contains(m.TextBody, "beforeafter") || !strings.Contains(m.HTMLBody, "<p>beforeafter</p>") {
			t.Errorf("bodies %q %q", m.TextBody, m.HTMLBody)
		}
		if m := msg("nul-from@customer.example"); m.FromName != "Frank" || m.FromAddress != "frank@customer.example" || m.Cc != "Gina <gina@customer.example>" {
			t.Errorf("from %q <%s>, cc %q", m.FromName, m.FromAddress, m.Cc)
		}
		if tk, _ := db.Ticket(ctx, results["04_nul_from_name.eml"].TicketID); tk.RequesterName != "Frank" {
			t.Errorf("requester %q", tk.RequesterName)
		}
		raw, err := db.Message(ctx, results["05_raw_nul_8bit.eml"].MessageID)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw.Attachments) != 1 || !strings.Contains(raw.TextBody, "a raw  NUL byte") {
			t.Fatalf("raw NUL message: %q %+v", raw.TextBody, raw.Attachments)
		}
		for _, s := range []string{raw.Subject, raw.FromName, raw.TextBody, raw.HTMLBody, raw.MessageID, raw.InReplyTo,
			raw.DedupeKey, raw.Attachments[0].Filename, raw.Attachments[0].ContentID} {
			if strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
				t.Errorf("stored with NUL or invalid UTF-8: %q", s)
			}
		}

		// A 6,000-byte Message-ID: stored as written, and its reply joins.
		long := msg(mailtest.LongMessageID)
		if long.MessageID != mailtest.LongMessageID || len(long.DedupeKey) > 100 {
			t.Errorf("long id: %d bytes stored, dedupe key %d bytes", len(long.MessageID), len(long.DedupeKey))
		}
		if r := results["07_reply_to_long_message_id.eml"]; r.Outcome != ingest.Joined || r.TicketID != results["06_long_message_id.eml"].TicketID {
			t.Errorf("reply to the long id: %s", r)
		}
		if m := msg("many-to@customer.example"); !strings.Contains(m.To, "person2999@many.example") || !strings.Contains(m.Cc, "person299@") {
			t.Errorf("To %d bytes, Cc %d bytes", len(m.To), len(m.Cc))
		}
		if m := msg("big-header@customer.example"); m.Subject != "A 2 MB header block" || !strings.Contains(m.TextBody, "after a 2 MB header") {
			t.Errorf("2 MB header: %q %q %q", m.Subject, m.TextBody, m.Problems)
		}

		// Forwards cut off: each stored with a Problem and its readable text.
		for _, id := range []string{"fwd-cut-1", "fwd-cut-2", "fwd-cut-3", "fwd-cut-4", "fwd-cut-5", "fwd-cut-6"} {
			m := msg(id + "@postdesk.example")
			if !strings.Contains(strings.Join(m.Problems, "\n"), "cut off before its end") {
				t.Errorf("%s: problems %q", id, m.Problems)
			}
			if !strings.Contains(m.TextBody, "Forwarding as attachment") && !strings.Contains(m.TextBody, "See attached") {
				t.Errorf("%s: text %q", id, m.TextBody)
			}
		}
		orig := msg("original-4711@customer.example") // recovered from the first cut forward
		if orig.FromAddress != "ann.example@customer.example" || !strings.Contains(orig.TextBody, "our printer P-200") || orig.RecoveredFrom == 0 {
			t.Errorf("recovered original: %+v", orig)
		}

		if m := msg("python-edges@silly.test"); m.Subject != "TEST" || m.FromAddress != "pete@silly.test" || m.FromName != "Pete" {
			t.Errorf("python edges: %q %q %q", m.Subject, m.FromAddress, m.FromName)
		}
		// The forward of an original with a long id recovers it; the
		// original arriving directly afterwards is recognised.
		if r := results["17_fwd_original_long_id.eml"]; r.Outcome != ingest.Recovered {
			t.Errorf("forward of a long-id original: %s", r)
		}
		if r := results["18_original_long_id_direct.eml"]; r.Outcome != ingest.Duplicate || r.TicketID != results["17_fwd_original_long_id.eml"].TicketID {
			t.Errorf("long-id original arriving directly: %s", r)
		}
		if r := results["99_normal_last.eml"]; r.Outcome != ingest.NewTicket {
			t.Errorf("the normal email after them: %s", r)
		}

		stored, err := db.CountMessages(ctx, mb.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mailtest.Hostile() {
			res, err := in.Ingest(ctx, mb, bytes.NewReader(m.Raw))
			if err != nil || res.Outcome != ingest.Duplicate {
				t.Errorf("second pass %s: %s %v", m.Name, res, err)
			}
		}
		if again, _ := db.CountMessages(ctx, mb.ID); again != stored {
			t.Errorf("second pass stored %d more messages", again-stored)
		}
	})
}
