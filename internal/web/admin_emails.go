package web

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

// flashCookie carries a one-time message to Admin -> Emails after a
// redirect, as "<kind>.<mailbox id>" ("connected.3"), or "retry.<quarantine
// id>"; the page writes the sentence from the database, so the cookie
// cannot put words on it.
const flashCookie = "postdesk_flash"

type emailsPage struct {
	page
	Mailboxes []mailboxView
	Notices   []noticeView
	Providers []providerChoice
	HasOAuth  bool
	// OAuthMailboxes: some mailbox does not sign in with a password
	// (without a provider configured, it cannot connect: the page says so;
	// a desk of password mailboxes does not need one).
	OAuthMailboxes bool
	SecretEnvs     string // the settings to set when no provider is configured
	Flash          string
	Add            addMailboxForm
}

// mailboxView is one mailbox on Admin -> Emails.
type mailboxView struct {
	ID       int64
	Address  string
	Name     string
	Provider string // for people: "Microsoft"
	Account  string // who signed in, when not the address itself
	stateView
	DeadlineLabel  string // "Due", or "Expires if not refreshed" when only the refresh window limits it
	DeadlineAt     time.Time
	DeadlineRel    string
	AuthorizedAt   time.Time
	AuthorizedRel  string
	LastRefreshAt  time.Time
	LastRefreshRel string
	OAuth          bool   // an OAuth mailbox: the maximum age applies
	MaxAgeDays     string // the form's value: "" (provider default), "0", "30"
	MaxAgeText     string // "90 days (Microsoft's default)", "Until revoked"
	MaxAgeError    string
	ConnectLabel   string // "Connect" or "Reauthenticate"
	Sync           *syncView
	Sending        *sendingView
	Transport      *transportView // Microsoft 365: IMAP/SMTP or Graph
	// Quarantine is the newest of the mailbox's open quarantined emails
	// (emails that could not be stored); QuarantineCount counts them all.
	Quarantine      []quarantineView
	QuarantineCount int
	// Health orders the list: problems first (desk.HealthOf).
	Health desk.Health
	// Paused: an admin paused fetching (Resume shows instead of Pause);
	// Manageable: it has server settings to edit, pause and resume.
	Paused, Manageable bool
	// RefreshRefusedAt is when the provider refused the last refresh
	// (zero: it did not); LastRefreshAt is then the last one that worked.
	RefreshRefusedAt time.Time
	Activity         []activityView
}

// activityView is one line of a mailbox's recent activity.
type activityView struct {
	store.Activity
	Text string
}

// activityShown is how many activity lines a card shows.
const activityShown = 8

// syncView is how a mailbox's fetching is doing.
type syncView struct {
	Server      string // "outlook.office365.com:993 (TLS, XOAUTH2)"
	Folders     string
	State       string // in words: "Waiting for new mail (IDLE)", "Connecting", ...
	Problem     bool
	LastSuccess time.Time
	LastRel     string
	LastError   string
	Today       int
}

// syncFor describes a mailbox's fetching from its server settings and status.
func (h *Handler) syncFor(r *http.Request, mb store.Mailbox, stopped bool, now time.Time) *syncView {
	ctx := r.Context()
	srv, err := h.db.MailboxServer(ctx, mb.ID)
	if err != nil {
		return nil
	}
	st, err := h.db.SyncStatus(ctx, mb.ID)
	if err != nil {
		return nil
	}
	security := map[string]string{"tls": "TLS", "starttls": "STARTTLS", "none": "no TLS"}[srv.IMAPSecurity]
	v := &syncView{Server: fmt.Sprintf("%s:%d (%s, %s)", srv.IMAPHost, srv.IMAPPort, security, strings.ToUpper(srv.AuthMethod)),
		Folders: strings.Join(srv.Folders, ", "), State: st.State.Words(), LastSuccess: st.LastSuccessAt}
	if srv.FetchesWithGraph() {
		v.Server = "Microsoft Graph (delta query)"
	}
	switch {
	case !srv.Enabled:
		v.State = "Paused by an admin: nothing is fetched until it is resumed"
	case stopped:
		v.State, v.Problem = "Stopped until the mailbox is reauthenticated; nothing is lost, it catches up then", true
	case st.State == store.SyncError:
		v.Problem, v.LastError = true, st.LastError
	}
	if !st.LastSuccessAt.IsZero() {
		v.LastRel = agoIn(st.LastSuccessAt, now, zoneOf(r.Context()))
	}
	if st.Day == now.Format(time.DateOnly) {
		v.Today = st.MessagesDay
	}
	return v
}

type noticeView struct {
	store.Notice
	Rel string
	// Resolved: a later event resolved it (desk.ResolveNotice); no Dismiss needed.
	Resolved   bool
	ResolvedBy string
	ResolvedAt time.Time
	// Quarantine, on a quarantine notice, is the mailbox's newest open
	// quarantined email: the notice offers its source and Retry.
	Quarantine *quarantineView
	// EmailWords says what became of its email to the admins; EmailWarn:
	// it was not sent (no healthy mailbox, no admin).
	EmailWords string
	EmailWarn  bool
}

type providerChoice struct {
	Name, Label string
	Selected    bool
}

// addMailboxForm is the add form's values and its error.
type addMailboxForm struct {
	Address, Name, Provider string
	AllowChange             bool
	Error                   string
}

// emailsForm carries a refused form back to the page.
type emailsForm struct {
	add       *addMailboxForm
	maxAgeFor int64
	maxAgeVal string
	maxAgeErr string
}

// emails shows Admin -> Emails: every mailbox with its authorization, the
// admins' notices and the add form.
func (h *Handler) emails(w http.ResponseWriter, r *http.Request) {
	h.renderEmails(w, r, http.StatusOK, emailsForm{})
}

func (h *Handler) renderEmails(w http.ResponseWriter, r *http.Request, status int, f emailsForm) {
	ctx := r.Context()
	now := h.now().UTC()
	loc := zoneOf(r.Context())
	p := emailsPage{page: h.base(r, "emails"), HasOAuth: h.oauth != nil, SecretEnvs: clientIDEnv("microsoft") + " and " + secretEnv("microsoft")}
	all, err := h.db.Mailboxes(ctx)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	var mailboxes []store.Mailbox
	for _, mb := range all {
		if !mb.Removed() {
			mailboxes = append(mailboxes, mb)
		}
	}
	syncs := map[int64]store.SyncStatus{}
	auths, err := h.db.MailboxAuths(ctx, "")
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	byID := make(map[int64]store.MailboxAuth, len(auths))
	for _, a := range auths {
		byID[a.MailboxID] = a
	}
	statuses := map[int64]oauth.Status{}
	if h.oauth != nil {
		list, err := h.oauth.Statuses(ctx)
		if err != nil {
			h.serverError(w, r, err)
			return
		}
		for _, st := range list {
			statuses[st.MailboxID] = st
		}
	}
	formTargets := map[string]bool{}
	for _, mb := range mailboxes {
		a, hasAuth := byID[mb.ID]
		st, ok := statuses[mb.ID]
		if !ok {
			st = recordedStatus(mb, a, hasAuth)
		}
		v := mailboxView{ID: mb.ID, Address: mb.Address, Name: mb.Name, Provider: providerLabel(h.oauth, a.Provider),
			stateView: describe(h.oauth, st, stoppedAt(st, a.ErrorAt), now, loc), OAuth: st.Kind == store.AuthOAuth,
			ConnectLabel: "Reauthenticate"}
		if !v.Connected {
			v.ConnectLabel = "Connect"
		}
		if st.Kind == store.AuthPassword {
			v.Provider = "Password (IMAP)"
			if a.State == store.AuthNeedsReauth {
				// The mail server refused the password: nothing is fetched
				// until an admin enters the new one.
				v.Chip, v.Tone, v.Stopped = "Password refused", "danger", true
				v.Detail = "The mail server refused the password"
				if !a.ErrorAt.IsZero() {
					v.Detail += " on " + timeIn(a.ErrorAt, loc)
				}
				v.Detail += ", so no mail is fetched: enter the new password in Edit settings; fetching resumes where it stopped."
			}
		}
		if v.Connected && st.Account != "" && !strings.EqualFold(st.Account, mb.Address) {
			v.Account = st.Account
		}
		if v.Stopped && !a.ErrorAt.IsZero() && a.ErrorAt.After(st.LastRefreshAt) {
			v.RefreshRefusedAt = a.ErrorAt
		}
		if v.Connected && st.Kind == store.AuthOAuth {
			v.DeadlineAt, v.AuthorizedAt, v.LastRefreshAt = st.Deadline, st.AuthorizedAt, st.LastRefreshAt
			v.DeadlineLabel = "Due"
			if !st.Deadline.IsZero() {
				v.DeadlineRel = relDays(st.Deadline, now)
				switch {
				case st.ReauthDueAt.IsZero() || st.ExpiresAt.Before(st.ReauthDueAt):
					v.DeadlineLabel = "Expires if not refreshed"
				case !st.Deadline.After(now):
					v.DeadlineLabel = "Was due"
				}
			}
			if !st.AuthorizedAt.IsZero() {
				v.AuthorizedRel = relDays(st.AuthorizedAt, now)
			}
			if !st.LastRefreshAt.IsZero() {
				v.LastRefreshRel = agoIn(st.LastRefreshAt, now, loc)
				if now.Sub(st.LastRefreshAt) >= oauth.Day {
					v.LastRefreshRel = relDays(st.LastRefreshAt, now)
				}
			}
		}
		if v.OAuth {
			v.MaxAgeDays, v.MaxAgeText = h.maxAgeText(a)
			if f.maxAgeFor == mb.ID {
				v.MaxAgeDays, v.MaxAgeError = f.maxAgeVal, f.maxAgeErr
			}
			if h.oauth != nil {
				if pr, ok := h.oauth.Provider(a.Provider); ok {
					formTargets[origin(pr.AuthURL)] = true
				}
			}
		}
		v.Sync = h.syncFor(r, mb, v.Stopped, now)
		if v.Sync != nil && st.Kind == store.AuthPassword && v.Stopped {
			v.Sync.State = "Stopped until the new password is entered; nothing is lost, it catches up then"
		}
		srv, srvErr := h.db.MailboxServer(ctx, mb.ID)
		sync, _ := h.db.SyncStatus(ctx, mb.ID)
		syncs[mb.ID] = sync
		v.Manageable = srvErr == nil
		v.Paused = v.Manageable && !srv.Enabled
		v.Health = desk.HealthOf(a, hasAuth, !v.Paused, sync)
		if v.Paused {
			v.Chip, v.Tone = "Paused", "muted"
		}
		if v.Sending, err = h.sendingFor(r, mb, now); err != nil {
			h.serverError(w, r, err)
			return
		}
		v.Transport = h.transportFor(ctx, mb, a)
		offerGraph(&v)
		if v.Activity, err = h.activityFor(r, mb.ID); err != nil {
			h.serverError(w, r, err)
			return
		}
		if v.Quarantine, v.QuarantineCount, err = h.quarantineFor(r, mb.ID, now); err != nil {
			h.serverError(w, r, err)
			return
		}
		p.Mailboxes = append(p.Mailboxes, v)
		p.OAuthMailboxes = p.OAuthMailboxes || st.Kind != store.AuthPassword
	}
	// Problems first (needs reauthentication, failing, expiring, not
	// connected), then the healthy and the paused; by address within each.
	slices.SortStableFunc(p.Mailboxes, func(x, y mailboxView) int { return cmp.Compare(x.Health, y.Health) })
	notices, err := h.db.Notices(ctx, store.NoticeFilter{UnreadOnly: true, Limit: 50})
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	for _, n := range notices {
		nv := noticeView{Notice: n, Rel: agoIn(n.CreatedAt, now, loc)}
		nv.EmailWords, nv.EmailWarn = noticeEmailWords(n.Email, func(id int64) string {
			for _, mb := range p.Mailboxes {
				if mb.ID == id {
					return mb.Address
				}
			}
			return ""
		})
		if res, ok := desk.ResolveNotice(n, byID[n.MailboxID], syncs[n.MailboxID]); ok {
			nv.Resolved, nv.ResolvedBy, nv.ResolvedAt = true, res.By, res.At
		}
		for _, mb := range p.Mailboxes {
			if mb.ID != n.MailboxID || mb.Sending == nil {
				continue
			}
			if res, ok := desk.ResolveSendingNotice(n, mb.Sending.LastSentAt); ok {
				nv.Resolved, nv.ResolvedBy, nv.ResolvedAt = true, res.By, res.At
			}
		}
		if n.Kind == store.NoticeQuarantined {
			for _, mb := range p.Mailboxes {
				if mb.ID == n.MailboxID && len(mb.Quarantine) > 0 {
					nv.Quarantine = &mb.Quarantine[0]
				}
			}
		}
		p.Notices = append(p.Notices, nv)
	}
	if f.add != nil {
		p.Add = *f.add
	}
	// Open notices first, then the ones a later event resolved.
	slices.SortStableFunc(p.Notices, func(x, y noticeView) int {
		switch {
		case x.Resolved == y.Resolved:
			return 0
		case y.Resolved:
			return -1
		}
		return 1
	})
	if h.oauth != nil {
		for _, pr := range h.oauth.Providers() {
			p.Providers = append(p.Providers, providerChoice{Name: pr.Name, Label: providerLabel(h.oauth, pr.Name), Selected: p.Add.Provider == pr.Name})
			formTargets[origin(pr.AuthURL)] = true
		}

	}
	p.Flash = h.takeFlash(w, r, p.Mailboxes, byID)
	csp := cspOptions{}
	for o := range formTargets {
		if o != "" {
			csp.formTargets = append(csp.formTargets, o)
		}
	}
	w.Header().Set("Content-Security-Policy", pageCSP(csp))
	h.render(w, r, status, "admin_emails", p)
}

// recordedStatus is a mailbox's status from its stored row alone, when no
// OAuth service is configured to evaluate it.
func recordedStatus(mb store.Mailbox, a store.MailboxAuth, hasAuth bool) oauth.Status {
	if !hasAuth {
		return oauth.Status{MailboxID: mb.ID, Address: mb.Address, Kind: store.AuthNone, State: store.AuthOK}
	}
	st := oauth.Status{MailboxID: mb.ID, Address: mb.Address, Kind: a.Kind, Provider: a.Provider, Account: a.Account,
		State: a.State, ExpiresAt: a.ExpiresAt, ReauthDueAt: a.ReauthDueAt, AuthorizedAt: a.AuthorizedAt,
		LastRefreshAt: a.LastRefreshAt, Reason: a.Error, Code: a.ErrorCode}
	if a.Kind == store.AuthOAuth && a.RefreshTokenSealed == "" {
		st.State, st.Code, st.NotConnected = store.AuthNeedsReauth, oauth.CodeNotConnected, true
	}
	st.Deadline = a.ExpiresAt
	if !a.ReauthDueAt.IsZero() && (st.Deadline.IsZero() || a.ReauthDueAt.Before(st.Deadline)) {
		st.Deadline = a.ReauthDueAt
	}
	return st
}

// maxAgeText is the maximum authorization age as the form's value and in
// words.
func (h *Handler) maxAgeText(a store.MailboxAuth) (value, text string) {
	if a.ReauthMaxAge != nil {
		if *a.ReauthMaxAge == 0 {
			return "0", "Until revoked"
		}
		return strconv.Itoa(int(*a.ReauthMaxAge / oauth.Day)), daysText(int(*a.ReauthMaxAge / oauth.Day))
	}
	if h.oauth != nil {
		if p, ok := h.oauth.Provider(a.Provider); ok {
			if p.DefaultMaxAge == 0 {
				return "", "Until revoked (" + providerLabel(h.oauth, a.Provider) + "'s default)"
			}
			return "", daysText(int(p.DefaultMaxAge/oauth.Day)) + " (" + providerLabel(h.oauth, a.Provider) + "'s default)"
		}
	}
	return "", "The provider's default"
}

// setFlash leaves a one-time message for the next view of Admin -> Emails
// (id is a mailbox's, or for "retry" a quarantined email's).
func (h *Handler) setFlash(w http.ResponseWriter, kind string, id int64) {
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: kind + "." + strconv.FormatInt(id, 10),
		Path: "/admin/emails", MaxAge: 120, HttpOnly: true, Secure: h.secureCookies, SameSite: http.SameSiteLaxMode})
}

// takeFlash reads and clears the flash cookie and writes its sentence.
func (h *Handler) takeFlash(w http.ResponseWriter, r *http.Request, list []mailboxView, auths map[int64]store.MailboxAuth) string {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: "/admin/emails", MaxAge: -1,
		HttpOnly: true, Secure: h.secureCookies, SameSite: http.SameSiteLaxMode})
	kind, idText, _ := strings.Cut(c.Value, ".")
	id, _ := strconv.ParseInt(idText, 10, 64)
	switch kind {
	case "retry":
		return h.retryFlash(r, id)
	case "removed":
		mb, err := h.db.Mailbox(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			return "Removed the mailbox: it had no tickets, so nothing of it is left."
		}
		if err != nil {
			return ""
		}
		return "Removed " + mb.Address + ": no more mail is fetched and its sign-in is forgotten. Its tickets stay."
	}
	for _, m := range list {
		if m.ID != id {
			continue
		}
		switch kind {
		case "added":
			return "Added " + m.Address + ". Its mail is fetched within a minute."
		case "saved":
			return "Saved the settings of " + m.Address + "."
		case "paused":
			return "Paused " + m.Address + ": no mail is fetched until you resume it."
		case "resumed":
			return "Resumed " + m.Address + ": fetching again from where it stopped."
		case "transport":
			if m.Transport != nil {
				return "Saved: " + m.Address + ". " + m.Transport.Words
			}
		}
	}
	a, ok := auths[id]
	if !ok {
		return ""
	}
	var v mailboxView
	for _, m := range list {
		if m.ID == id {
			v = m
		}
	}
	switch kind {
	case "connected":
		msg := a.Address + " is connected"
		if v.Account != "" {
			msg += " (signed in as " + v.Account + ")"
		}
		if a.ReauthDueAt.IsZero() {
			return msg + ". It stays authorized until revoked; Postdesk refreshes it every 12 hours."
		}
		return msg + ". Authorization due again on " + timeIn(a.ReauthDueAt, zoneOf(r.Context())) + "."
	case "maxage":
		return "Saved: " + a.Address + " — maximum authorization age " + strings.ToLower(v.MaxAgeText) + "."
	}
	return ""
}

// origin is scheme://host of a URL ("" when it has none).
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// mailboxFromPath reads {id} and loads the mailbox, answering 404 itself.
func (h *Handler) mailboxFromPath(w http.ResponseWriter, r *http.Request) (store.Mailbox, bool) {
	id, ok := pathID(r)
	if !ok {
		h.notFoundEmails(w, r, "There is no mailbox "+strconv.Quote(r.PathValue("id"))+".")
		return store.Mailbox{}, false
	}
	mb, err := h.db.Mailbox(r.Context(), id)
	if err == nil && mb.Removed() {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		h.notFoundEmails(w, r, "Mailbox #"+strconv.FormatInt(id, 10)+" doesn't exist (it may have been removed).")
		return store.Mailbox{}, false
	}
	if err != nil {
		h.serverError(w, r, err)
		return store.Mailbox{}, false
	}
	return mb, true
}

func (h *Handler) notFoundEmails(w http.ResponseWriter, r *http.Request, message string) {
	h.errorPage(w, r, errorPage{Status: http.StatusNotFound, Heading: "Not found", Message: message,
		LinkURL: "/admin/emails", LinkText: "Back to Emails"})
}
