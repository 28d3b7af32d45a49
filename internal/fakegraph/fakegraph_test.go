package fakegraph_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/fakegraph"
)

func TestTokensAudienceScopesAndMailboxesAreChecked(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	inbox := w.base + "/me/mailFolders/inbox"
	mustError(t, do(t, "GET", inbox, "", ""), 401, "InvalidAuthenticationToken")
	mustError(t, do(t, "GET", inbox, "EwBnot-a-token", ""), 401, "InvalidAuthenticationToken")
	// A token for Exchange's IMAP is not a token for Graph.
	imap := w.token(t, agent, "https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access")
	a := do(t, "GET", inbox, imap, "")
	mustError(t, a, 401, "InvalidAuthenticationToken")
	if !strings.Contains(a.header.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(a.message(), "audience") {
		t.Fatalf("wrong audience answer: %v %s", a.header, a.body)
	}
	sendOnly := w.token(t, agent, send)
	mustError(t, do(t, "GET", inbox, sendOnly, ""), 403, "ErrorAccessDenied")
	rw := w.token(t, agent, readWrite, "offline_access")
	if a := do(t, "GET", inbox, rw, ""); a.status != 200 || a.json["displayName"] != "Inbox" || a.json["id"] == "" {
		t.Fatalf("inbox: %d %s", a.status, a.body)
	}
	mustError(t, do(t, "POST", w.base+"/me/sendMail", rw, "eA==", "Content-Type", "text/plain"), 403, "ErrorAccessDenied")
	// Bare scopes mean Graph, as at Microsoft.
	if a := do(t, "GET", inbox, w.token(t, agent, "Mail.Read"), ""); a.status != 200 {
		t.Fatalf("bare Mail.Read: %d %s", a.status, a.body)
	}
	// Another user's mailbox: not granted, then granted without and with .Shared.
	sharedInbox := w.base + "/users/" + shared + "/mailFolders/inbox"
	mustError(t, do(t, "GET", sharedInbox, rw, ""), 403, "ErrorAccessDenied")
	mustError(t, do(t, "GET", w.base+"/users/nobody@example.com/mailFolders/inbox", rw, ""), 404, "ErrorInvalidUser")
	if err := w.idp.GrantMailbox(agent, shared); err != nil {
		t.Fatal(err)
	}
	mustError(t, do(t, "GET", sharedInbox, rw, ""), 403, "ErrorAccessDenied")
	sharedRW := w.token(t, agent, "https://graph.microsoft.com/Mail.ReadWrite.Shared")
	if a := do(t, "GET", sharedInbox, sharedRW, ""); a.status != 200 {
		t.Fatalf("shared inbox with Mail.ReadWrite.Shared: %d %s", a.status, a.body)
	}
	// A revoked sign-in's tokens stop working at once.
	if err := w.idp.Revoke(agent); err != nil {
		t.Fatal(err)
	}
	mustError(t, do(t, "GET", inbox, rw, ""), 401, "InvalidAuthenticationToken")
}

// page is one delta answer.
type page struct {
	ids, removed []string
	next, delta  string
}

func getPage(t *testing.T, link, token string, size int) page {
	t.Helper()
	var h []string
	if size > 0 {
		h = []string{"Prefer", fmt.Sprintf("odata.maxpagesize=%d", size)}
	}
	a := do(t, "GET", link, token, "", h...)
	if a.status != 200 {
		t.Fatalf("delta %s: %d %s", link, a.status, a.body)
	}
	var p page
	p.next, _ = a.json["@odata.nextLink"].(string)
	p.delta, _ = a.json["@odata.deltaLink"].(string)
	if (p.next == "") == (p.delta == "") {
		t.Fatalf("a page needs exactly one link: %s", a.body)
	}
	for _, v := range a.json["value"].([]any) {
		m := v.(map[string]any)
		if _, ok := m["@removed"]; ok {
			p.removed = append(p.removed, m["id"].(string))
		} else {
			p.ids = append(p.ids, m["id"].(string))
		}
	}
	return p
}

// round follows a delta round from link to its deltaLink.
func round(t *testing.T, link, token string, size int) (ids, removed []string, pages int, deltaLink string) {
	t.Helper()
	for {
		p := getPage(t, link, token, size)
		pages++
		ids, removed = append(ids, p.ids...), append(removed, p.removed...)
		if p.delta != "" {
			return ids, removed, pages, p.delta
		}
		link = p.next
	}
}

func TestDeltaPagesRoundsRemovalsAndReset(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.token(t, agent, readWrite)
	var want []string
	for i := range 25 {
		want = append(want, w.g.Deliver(agent, "inbox", mime(customer, agent, fmt.Sprint("m", i), fmt.Sprintf("<m%d@example.net>", i))))
	}
	w.g.Deliver(agent, "sentitems", mime(agent, customer, "other folder", "<s@example.com>"))
	start := w.base + "/me/mailFolders/inbox/messages/delta?$select=receivedDateTime,internetMessageId"
	ids, removed, pages, dl := round(t, start, tok, 10)
	if pages != 3 || strings.Join(ids, ",") != strings.Join(want, ",") || len(removed) != 0 {
		t.Fatalf("first round: %d pages, %d ids, %d removed", pages, len(ids), len(removed))
	}
	// Without Prefer: Graph's default page of 10.
	if p := getPage(t, start, tok, 0); len(p.ids) != 10 {
		t.Fatalf("default page size: %d", len(p.ids))
	}
	// Nothing new: an empty page and a new deltaLink.
	ids, _, _, dl = round(t, dl, tok, 10)
	if len(ids) != 0 {
		t.Fatalf("quiet round returned %d", len(ids))
	}
	fresh := w.g.Deliver(agent, "inbox", mime(customer, agent, "new", "<new@example.net>"))
	if err := w.g.Remove(agent, want[3]); err != nil {
		t.Fatal(err)
	}
	ids, removed, _, dl = round(t, dl, tok, 10)
	if len(ids) != 1 || ids[0] != fresh || len(removed) != 1 || removed[0] != want[3] {
		t.Fatalf("change round: ids %v removed %v", ids, removed)
	}
	// The links are opaque and signed: a changed one, or one with other
	// options, is refused; a link of another folder too.
	u, _ := url.Parse(dl)
	q := u.Query()
	tok2 := q.Get("$deltatoken")
	tampered := strings.Replace(dl, tok2, tok2[:5]+flip(tok2[5])+tok2[6:], 1)
	mustError(t, do(t, "GET", tampered, tok, ""), 400, "ErrorInvalidSyncStateData")
	mustError(t, do(t, "GET", dl+"&$top=5", tok, ""), 400, "ErrorInvalidUrlQuery")
	sent := strings.Replace(dl, u.Path, strings.Replace(u.Path, pathFolder(u.Path), "sentitems", 1), 1)
	mustError(t, do(t, "GET", sent, tok, ""), 400, "ErrorInvalidSyncStateData")
	mustError(t, do(t, "GET", start+"&$orderby=subject", tok, ""), 400, "ErrorInvalidUrlQuery")
	mustError(t, do(t, "GET", w.base+"/me/mailFolders/inbox/messages/delta?$filter="+url.QueryEscape("subject eq 'x'"), tok, ""), 400, "ErrorInvalidUrlQuery")
	// Graph drops delta state: 410 syncStateNotFound, and a new round works.
	w.g.ResetDelta(agent)
	mustError(t, do(t, "GET", dl, tok, ""), 410, "syncStateNotFound")
	ids, _, _, _ = round(t, start, tok, 100)
	if len(ids) != 25 {
		t.Fatalf("after reset: %d messages, want 25 (26 delivered, one removed)", len(ids))
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func pathFolder(p string) string {
	_, rest, _ := strings.Cut(p, "/mailFolders/")
	f, _, _ := strings.Cut(rest, "/")
	return f
}

func TestDeltaFilterAndReplays(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.token(t, agent, readWrite)
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var recent []string
	for i := range 10 {
		id := w.g.DeliverAt(agent, "inbox", mime(customer, agent, "s", fmt.Sprintf("<f%d@x>", i)), day.AddDate(0, 0, i))
		if i >= 6 {
			recent = append(recent, id)
		}
	}
	start := w.base + "/me/mailFolders/inbox/messages/delta?$filter=" + url.QueryEscape("receivedDateTime ge "+day.AddDate(0, 0, 6).Format(time.RFC3339))
	ids, _, _, dl := round(t, start, tok, 3)
	if strings.Join(ids, ",") != strings.Join(recent, ",") {
		t.Fatalf("filtered round: %v, want %v", ids, recent)
	}
	// A replay serves a page again; the round still ends.
	w.g.Replay(agent, 1)
	ids, _, pages, _ := round(t, w.base+"/me/mailFolders/inbox/messages/delta", tok, 4)
	if len(ids) != 14 || pages != 4 {
		t.Fatalf("replayed round: %d items in %d pages, want 14 (10 + 4 again) in 4", len(ids), pages)
	}
	// A replay at the start of a round serves the previous round again,
	// with the filter the link carries.
	w.g.Replay(agent, 1)
	ids, _, _, _ = round(t, dl, tok, 10)
	if strings.Join(ids, ",") != strings.Join(recent, ",") {
		t.Fatalf("replayed round: %v, want %v", ids, recent)
	}
	// A touched message comes again in the next round.
	if err := w.g.Touch(agent, recent[0]); err != nil {
		t.Fatal(err)
	}
	ids, _, _, _ = round(t, dl, tok, 10)
	if len(ids) != 1 || ids[0] != recent[0] {
		t.Fatalf("touched: %v", ids)
	}
}

func TestSendMailFilesDeliversAndStripsAutoSubmitted(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.g.AddMailbox(customer)
	tok := w.token(t, agent, readWrite, send)
	post := func(body string, ct string) answer {
		return do(t, "POST", w.base+"/me/sendMail", tok, body, "Content-Type", ct)
	}
	raw := mime(agent, customer, "Re: help", "<reply-1@postdesk.test>", "In-Reply-To: <q@example.net>", "References: <q@example.net>", "Auto-Submitted: auto-replied")
	b64 := base64.StdEncoding.EncodeToString(raw)
	mustError(t, post("not base64!", "text/plain"), 400, "ErrorMimeContentInvalidBase64String")
	mustError(t, post(b64[:len(b64)-1], "text/plain"), 400, "ErrorMimeContentInvalidBase64String")
	mustError(t, post(b64, "application/json"), 400, "ErrorInvalidRequest")
	other := base64.StdEncoding.EncodeToString(mime("someone@else.example", customer, "x", "<x@y>"))
	mustError(t, post(other, "text/plain"), 403, "ErrorSendAsDenied")
	noRcpt := base64.StdEncoding.EncodeToString([]byte("From: " + agent + "\r\nSubject: x\r\n\r\nbody\r\n"))
	// Without From and Message-ID, Exchange supplies both.
	bare := base64.StdEncoding.EncodeToString([]byte("To: " + customer + "\r\nSubject: bare\r\n\r\nbody\r\n"))
	if a := post(bare, "text/plain"); a.status != http.StatusAccepted {
		t.Fatalf("bare sendMail: %d %s", a.status, a.body)
	}
	if got := w.g.Messages(customer, "inbox"); len(got) != 1 || got[0].MessageID == "" || !strings.HasPrefix(string(got[0].Raw), "From: "+agent+"\r\n") {
		t.Fatalf("bare message delivered as %+v", got)
	}
	w.g.Remove(customer, w.g.Messages(customer, "inbox")[0].ID)
	w.g.Remove(agent, w.g.Messages(agent, "sentitems")[0].ID)
	mustError(t, post(noRcpt, "text/plain"), 400, "ErrorInvalidRecipients")
	// Line-wrapped base64 is fine (white space is skipped).
	var wrapped strings.Builder
	for i := 0; i < len(b64); i += 76 {
		wrapped.WriteString(b64[i:min(i+76, len(b64))] + "\r\n")
	}
	if a := post(wrapped.String(), "text/plain"); a.status != http.StatusAccepted || len(a.body) != 0 {
		t.Fatalf("sendMail: %d %s", a.status, a.body)
	}
	if s := w.g.Sent(agent); len(s) != 2 || string(s[1]) != string(raw) {
		t.Fatalf("Sent: %q", s)
	}
	for _, c := range []struct{ user, folder string }{{agent, "sentitems"}, {customer, "inbox"}} {
		got := w.g.Messages(c.user, c.folder)
		if len(got) != 1 || got[0].MessageID != "<reply-1@postdesk.test>" {
			t.Fatalf("%s %s: %+v", c.user, c.folder, got)
		}
		r := string(got[0].Raw)
		if strings.Contains(r, "Auto-Submitted") || !strings.Contains(r, "In-Reply-To: <q@example.net>") || !strings.HasSuffix(r, "\r\n\r\nHello.\r\n") {
			t.Fatalf("%s copy:\n%s", c.folder, r)
		}
	}
	// $value of the filed copy, by its id.
	id := w.g.Messages(agent, "sentitems")[0].ID
	a := do(t, "GET", w.base+"/me/messages/"+id+"/$value", tok, "")
	if a.status != 200 || string(a.body) != string(w.g.Messages(agent, "sentitems")[0].Raw) {
		t.Fatalf("$value: %d %q", a.status, a.body)
	}
	mustError(t, do(t, "GET", w.base+"/me/messages/AAMkADnope/$value", tok, ""), 404, "ErrorItemNotFound")
	big := strings.Repeat("A", fakegraph.MaxRequestBytes+4)
	if a := post(big, "text/plain"); a.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("4 MB limit: %d", a.status)
	}
}

func TestFoldersByNameAndChild(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.token(t, agent, readWrite)
	sup, err := w.g.AddFolder(agent, "", "Support's")
	if err != nil {
		t.Fatal(err)
	}
	esc, err := w.g.AddFolder(agent, sup, "Escalations")
	if err != nil {
		t.Fatal(err)
	}
	a := do(t, "GET", w.base+"/me/mailFolders?$filter="+url.QueryEscape("displayName eq 'Support''s'"), tok, "")
	if v := a.json["value"].([]any); a.status != 200 || len(v) != 1 || v[0].(map[string]any)["id"] != sup {
		t.Fatalf("by name: %s", a.body)
	}
	a = do(t, "GET", w.base+"/me/mailFolders/"+sup+"/childFolders?$filter="+url.QueryEscape("displayName eq 'Escalations'"), tok, "")
	if v := a.json["value"].([]any); a.status != 200 || len(v) != 1 || v[0].(map[string]any)["id"] != esc {
		t.Fatalf("child: %s", a.body)
	}
	mustError(t, do(t, "GET", w.base+"/me/mailFolders/nope", tok, ""), 404, "ErrorInvalidIdMalformed")
	mustError(t, do(t, "GET", w.base+"/me/contacts", tok, ""), 400, "BadRequest")
}

func TestFaultsAndConcurrencyLimit(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.token(t, agent, readWrite)
	inbox := w.base + "/me/mailFolders/inbox"
	w.g.Throttle(agent, fakegraph.OpFolders, 1, "7")
	w.g.Throttle(agent, fakegraph.OpDelta, 1, "") // does not match a folder request
	w.g.Unavailable("", fakegraph.OpAny, 1)
	a := do(t, "GET", inbox, tok, "")
	mustError(t, a, 429, "ApplicationThrottled")
	if a.header.Get("Retry-After") != "7" {
		t.Fatalf("Retry-After %q", a.header.Get("Retry-After"))
	}
	mustError(t, do(t, "GET", inbox, tok, ""), 503, "ServiceNotAvailable")
	a = do(t, "GET", w.base+"/me/mailFolders/inbox/messages/delta", tok, "")
	mustError(t, a, 429, "ApplicationThrottled")
	if a.header.Get("Retry-After") != "" {
		t.Fatal("a throttle without Retry-After sent one")
	}
	w.g.RejectToken(agent, fakegraph.OpAny, 1)
	mustError(t, do(t, "GET", inbox, tok, ""), 401, "InvalidAuthenticationToken")
	w.g.BlockByPolicy(agent, true)
	a = do(t, "GET", inbox, tok, "")
	mustError(t, a, 403, "ErrorAccessDenied")
	if !strings.Contains(a.message(), "Access to OData is disabled") {
		t.Fatalf("policy message %q", a.message())
	}
	w.g.BlockByPolicy(agent, false)
	if a := do(t, "GET", inbox, tok, ""); a.status != 200 {
		t.Fatalf("after the faults: %d", a.status)
	}

	// Eight at once against a mailbox whose requests take 2 s: four are
	// served, those arriving while four are in flight are refused as
	// MailboxConcurrency (on a loaded machine a late one may find a free
	// slot, so only "some refused, at least four served" is certain).
	w.g.SetLatency(2 * time.Second)
	var wg sync.WaitGroup
	statuses := make(chan int, 8)
	for range 8 {
		wg.Go(func() { statuses <- do(t, "GET", inbox, tok, "").status })
	}
	wg.Wait()
	close(statuses)
	n := map[int]int{}
	for s := range statuses {
		n[s]++
	}
	if n[200] < 4 || n[429] < 1 || n[200]+n[429] != 8 || w.g.MaxInFlightSeen(agent) < 5 {
		t.Fatalf("8 concurrent: %v, peak %d", n, w.g.MaxInFlightSeen(agent))
	}
}
