package mailtest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/postdesk/postdesk/internal/sasl"
)

// TestDeliverAppendRecreate delivers over LMTP, bulk-loads with MULTIAPPEND
// and changes UIDVALIDITY, reading everything back over IMAP.
func TestDeliverAppendRecreate(t *testing.T) {
	t.Parallel()
	const support = "support@example.com"
	s := Start(t, Options{PasswordUsers: map[string]string{"pw@example.com": "pw-secret"}})

	t.Run("lmtp delivery then fetch", func(t *testing.T) {
		ctx := testCtx(t)
		want := [][]byte{
			testMessage("customer@example.net", support, "Printer on fire"),
			testMessage("other@example.net", support, "Invoice"),
		}
		for _, m := range want {
			if err := s.Deliver(ctx, support, m); err != nil {
				t.Fatal(err)
			}
		}
		// Postdesk's own view: XOAUTH2 login and UID FETCH.
		c, err := imapLogin(t, s.IMAPAddr, sasl.NewXOAuth2Client(support, mustToken(t, s, support)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		var all imap.UIDSet
		all.AddRange(1, 0)
		bufs, err := c.Fetch(all, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		if len(bufs) != 2 || !bytes.HasSuffix(bufs[0].BodySection[0].Bytes, want[0]) ||
			!bytes.Contains(bufs[0].BodySection[0].Bytes, []byte("Return-Path: <customer@example.net>")) {
			t.Fatalf("fetched %d messages; first:\n%s", len(bufs), bufs[0].BodySection[0].Bytes)
		}
		got, err := s.Messages(ctx, support, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		wantSameRaw(t, got, want)
		if got[0].UID != 1 || got[1].UID != 2 || len(got[0].Flags) != 0 || got[0].InternalDate.IsZero() {
			t.Errorf("messages: %+v", got)
		}
	})

	t.Run("multiappend", func(t *testing.T) {
		ctx := testCtx(t)
		const n = 2500 // three commands
		msgs := make([][]byte, n)
		for i := range msgs {
			msgs[i] = testMessage("customer@example.net", "bulk@example.com", fmt.Sprintf("Bulk %d", i))
		}
		began := time.Now()
		if err := s.Append(ctx, "bulk@example.com", "", "INBOX", msgs); err != nil {
			t.Fatal(err)
		}
		d := time.Since(began)
		t.Logf("MULTIAPPEND of %d messages: %v (%.0f msgs/s)", n, d.Round(time.Millisecond), n/d.Seconds())
		got, err := s.Messages(ctx, "bulk@example.com", "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		wantSameRaw(t, got, msgs)

		// With the user's own credentials: a token or a password.
		tok := mustToken(t, s, "bulk@example.com")
		if err := s.Append(ctx, "bulk@example.com", tok, "Archive/2026", msgs[:3]); err == nil {
			t.Fatal("append to a missing folder succeeded")
		}
		if err := s.Append(ctx, "bulk@example.com", tok, "Sent", msgs[:3]); err != nil {
			t.Fatalf("append with a token: %v", err)
		}
		if err := s.Append(ctx, "pw@example.com", "pw-secret", "INBOX", msgs[:1]); err != nil {
			t.Fatalf("append with a password: %v", err)
		}
		if err := s.Append(ctx, "pw@example.com", "wrong", "INBOX", msgs[:1]); err == nil {
			t.Fatal("append with a wrong password succeeded")
		}
	})

	for _, folder := range []string{"INBOX", "Support Queue"} {
		t.Run("recreate "+folder, func(t *testing.T) {
			ctx := testCtx(t)
			const user = "recreate@example.com"
			msgs := [][]byte{
				testMessage("a@example.net", user, "one"),
				testMessage("b@example.net", user, "two"),
				testMessage("c@example.net", user, "three"),
			}
			if folder != "INBOX" {
				c, done, err := s.imapAs(ctx, user)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Create(folder, nil).Wait(); err != nil {
					t.Fatal(err)
				}
				done()
			}
			if err := s.Append(ctx, user, "", folder, msgs); err != nil {
				t.Fatal(err)
			}
			// A flag and the internal date must survive.
			c, done, err := s.imapAs(ctx, user)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Select(folder, nil).Wait(); err != nil {
				t.Fatal(err)
			}
			var first imap.UIDSet
			first.AddNum(1)
			flags := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}
			if err := c.Store(first, flags, nil).Close(); err != nil {
				t.Fatal(err)
			}
			done()
			before, err := s.Messages(ctx, user, folder)
			if err != nil {
				t.Fatal(err)
			}
			oldUV, err := s.UIDValidity(ctx, user, folder)
			if err != nil {
				t.Fatal(err)
			}
			newUV, err := s.RecreateFolder(ctx, user, folder)
			if err != nil {
				t.Fatal(err)
			}
			if newUV == oldUV || newUV == 0 {
				t.Fatalf("UIDVALIDITY %d -> %d", oldUV, newUV)
			}
			after, err := s.Messages(ctx, user, folder)
			if err != nil {
				t.Fatal(err)
			}
			wantSameRaw(t, after, msgs)
			if !slices.Contains(after[0].Flags, `\Seen`) || !after[0].InternalDate.Equal(before[0].InternalDate) {
				t.Errorf("flags/date not kept: before %v %v, after %v %v",
					before[0].Flags, before[0].InternalDate, after[0].Flags, after[0].InternalDate)
			}
			t.Logf("%s: UIDVALIDITY %d -> %d, UIDs %d..%d -> %d..%d", folder, oldUV, newUV,
				before[0].UID, before[2].UID, after[0].UID, after[2].UID)
		})
	}
}
