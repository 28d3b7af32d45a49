package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

func TestAuthBanners(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 21, 9, 0, 0, 0, time.UTC)
	day := oauth.Day
	mb := func(id int64, addr string, state store.AuthState) oauth.Status {
		return oauth.Status{MailboxID: id, Address: addr, Kind: store.AuthOAuth, Provider: "microsoft", State: state,
			Deadline: now.Add(60 * day), ReauthDueAt: now.Add(60 * day), ExpiresAt: now.Add(80 * day)}
	}
	expiring := mb(1, "a@example.com", store.AuthExpiring)
	expiring.Deadline = now.Add(9 * day)
	overdue := mb(2, "b@example.com", store.AuthExpiring)
	overdue.Overdue, overdue.ReauthDueAt = true, now.Add(-2*day)
	broken := mb(3, "c@example.com", store.AuthNeedsReauth)
	broken.Code, broken.Reason = "AADSTS50173", "The password was changed or reset (or the account's sessions were revoked): sign in again."
	fault1 := mb(4, "d@example.com", store.AuthProviderFault)
	fault1.Code, fault1.Reason, fault1.SecretFault = "AADSTS7000222", "The client secret expired: update the client secret in the provider settings.", true
	fault2 := fault1
	fault2.MailboxID, fault2.Address = 5, "e@example.com"
	notConnected := mb(6, "f@example.com", store.AuthNeedsReauth)
	notConnected.Code, notConnected.NotConnected = oauth.CodeNotConnected, true
	fine := mb(7, "g@example.com", store.AuthOK)
	password := oauth.Status{MailboxID: 8, Address: "h@example.com", Kind: store.AuthPassword, State: store.AuthOK}

	t.Run("one of each", func(t *testing.T) {
		got := authBanners(nil, []oauth.Status{fine, expiring, password, notConnected}, nil, now, time.UTC)
		if len(got) != 1 {
			t.Fatalf("banners = %+v", got)
		}
		b := got[0]
		if b.Level != BannerWarning || b.Title != "a@example.com needs reauthentication in 9 days" ||
			b.Text != "(due 30 May 2026, 09:00 UTC). Mail stops arriving if it runs out." || b.LinkURL != "/admin/emails#mailbox-1" || b.LinkText != "Reauthenticate" {
			t.Errorf("expiring banner = %+v", b)
		}

		got = authBanners(nil, []oauth.Status{overdue}, nil, now, time.UTC)
		if len(got) != 1 || got[0].Level != BannerUrgent || got[0].Title != "b@example.com reauthentication was due on 19 May 2026, 09:00 UTC;" ||
			!strings.Contains(got[0].Text, "mail still arrives while Microsoft accepts the old sign-in") {
			t.Errorf("overdue banner = %+v", got)
		}

		stopped := now.Add(-3 * day)
		got = authBanners(nil, []oauth.Status{broken}, map[int64]time.Time{3: stopped}, now, time.UTC)
		if len(got) != 1 || got[0].Level != BannerDanger || got[0].Title != "c@example.com stopped receiving mail on 18 May 2026, 09:00 UTC:" ||
			got[0].Text != broken.Reason || got[0].LinkText != "Reauthenticate" {
			t.Errorf("needs_reauth banner = %+v", got)
		}
	})

	t.Run("provider fault is one banner per provider", func(t *testing.T) {
		got := authBanners(nil, []oauth.Status{fault1, fault2}, nil, now, time.UTC)
		if len(got) != 1 {
			t.Fatalf("banners = %+v", got)
		}
		b := got[0]
		if b.Level != BannerDanger || b.Title != "Microsoft refuses Postdesk's client secret:" ||
			!strings.Contains(b.Text, "update the client secret (POSTDESK_MICROSOFT_CLIENT_SECRET)") || !strings.Contains(b.Text, "2 mailboxes affected") ||
			strings.Contains(b.Title+b.Text+b.LinkText, "eauthenticate") {
			t.Errorf("fault banner = %+v", b)
		}
	})

	t.Run("cap", func(t *testing.T) {
		var many []oauth.Status
		for i := range 5 {
			st := expiring
			st.MailboxID, st.Address = int64(10+i), string(rune('k'+i))+"@example.com"
			st.Deadline = now.Add(time.Duration(9-i) * day)
			many = append(many, st)
		}
		got := authBanners(nil, append(many, broken, fault1), nil, now, time.UTC)
		if len(got) != 5 {
			t.Fatalf("%d banners: %+v", len(got), got)
		}
		if !strings.Contains(got[0].Title, "client secret") || !strings.HasPrefix(got[1].Title, "c@example.com") {
			t.Errorf("order: %q, %q", got[0].Title, got[1].Title)
		}
		// Expiring soonest first.
		if !strings.HasPrefix(got[2].Title, "o@example.com needs reauthentication in 5 days") {
			t.Errorf("third = %q", got[2].Title)
		}
		if got[4].Title != "And 3 more mailboxes need attention." || got[4].LinkURL != "/admin/emails" {
			t.Errorf("summary = %+v", got[4])
		}
	})
}

func TestRelDays(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 21, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{9 * oauth.Day, "in 9 days"},
		{9*oauth.Day - time.Hour, "in 8 days"},
		{oauth.Day, "in 1 day"},
		{time.Hour, "within a day"},
		{-time.Hour, "today"},
		{0, "today"},
		{-2*oauth.Day - time.Hour, "2 days ago"},
	} {
		if got := relDays(now.Add(tc.d), now); got != tc.want {
			t.Errorf("relDays(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// TestBannersForAgents: agents see the warning without a link to a page
// they may not open.
func TestBannersForAgents(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, "sqlite")
	mb := o.addMailbox(supportAddr)
	o.connectHTTP(o.signedIn(), mb.ID, supportAddr, false)
	o.day(81)
	_, body := o.get(o.signedInAs(agentEmail), "/tickets")
	wantContains(t, body, "support@example.com needs reauthentication in 9 days", "An administrator can fix this under Admin → Emails.")
	wantNotContains(t, body, "/admin/emails#mailbox-")
	res, body := o.get(o.signedIn(), "/tickets")
	wantStatus(t, res, http.StatusOK)
	wantContains(t, body, `href="/admin/emails#mailbox-`, ">Reauthenticate<")
}
