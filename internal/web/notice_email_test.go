package web

import (
	"context"
	"testing"

	"github.com/postdesk/postdesk/internal/store"
)

// Admin → Emails says what became of each notice's email to the admins,
// and says plainly when none could be sent.
func TestNoticeEmailShown(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, "sqlite")
	mb := o.addMailbox(supportAddr)
	c := o.signedIn()
	o.connectHTTP(c, mb.ID, supportAddr, false)
	o.day(81)
	ctx := context.Background()
	if _, err := o.svc.EvaluateAll(ctx); err != nil {
		t.Fatal(err)
	}
	_, body := o.get(c, "/admin/emails")
	wantContains(t, body, "support@example.com: the authorization runs out on", "Being emailed to the admins.")
	list, err := o.db.Notices(ctx, store.NoticeFilter{UnreadOnly: true})
	if err != nil || len(list) != 1 {
		t.Fatalf("notices %v, %v", list, err)
	}
	decide := func(id int64, e store.NoticeEmail) {
		t.Helper()
		if err := o.db.Write(ctx, func(tx *store.Tx) error { return tx.DecideNoticeEmail(ctx, id, e) }); err != nil {
			t.Fatal(err)
		}
	}
	decide(list[0].ID, store.NoticeEmail{State: store.EmailNoMailbox})
	_, body = o.get(c, "/admin/emails")
	wantContains(t, body, `class="notice-email notice-email-warn"`, "Not emailed: no mailbox could send it")
	wantNotContains(t, body, "Being emailed")
	n := store.Notice{MailboxID: mb.ID, Kind: "sync_skipped", Message: "support@example.com: 3 messages were not fetched.", CreatedAt: o.clock.Now()}
	if err := o.db.Write(ctx, func(tx *store.Tx) error { return tx.AddNotice(ctx, &n) }); err != nil {
		t.Fatal(err)
	}
	decide(n.ID, store.NoticeEmail{State: store.EmailQueued, MailboxID: mb.ID, Count: 2})
	_, body = o.get(c, "/admin/emails")
	wantContains(t, body, "Emailed to 2 admins through support@example.com.", "Not emailed: no mailbox could send it")
}
