package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

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
	Mailboxes  []mailboxView
	Notices    []noticeView
	Providers  []providerChoice
	HasOAuth   bool
	SecretEnvs string // the settings to set when no provider is configured
	Flash      string
	Add        addMailboxForm
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
	// Quarantine is the newest of the mailbox's open quarantined emails
	// (emails that could not be stored); QuarantineCount counts them all.
	Quarantine      []quarantineView
	QuarantineCount int
}

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
	switch {
	case !srv.Enabled:
		v.State = "Disabled"
	case stopped:
		v.State, v.Problem = "Stopped until the mailbox is reauthenticated; nothing is lost, it catches up then", true
	case st.State == store.SyncError:
		v.Problem, v.LastError = true, st.LastError
	}
	if !st.LastSuccessAt.IsZero() {
		v.LastRel = agoFrom(st.LastSuccessAt, now)
	}
	if st.Day == now.Format(time.DateOnly) {
		v.Today = st.MessagesDay
	}
	return v
}

type noticeView struct {
	store.Notice
	Rel string
	// Quarantine, on a quarantine notice, is the mailbox's newest open
	// quarantined email: the notice offers its source and Retry.
	Quarantine *quarantineView
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
	p := emailsPage{page: h.base(r, "emails"), HasOAuth: h.oauth != nil, SecretEnvs: "POSTDESK_MICROSOFT_CLIENT_ID and " + secretEnv("microsoft")}
	mailboxes, err := h.db.Mailboxes(ctx)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
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
			stateView: describe(h.oauth, st, stoppedAt(st, a.ErrorAt), now), OAuth: st.Kind == store.AuthOAuth,
			ConnectLabel: "Reauthenticate"}
		if !v.Connected {
			v.ConnectLabel = "Connect"
		}
		if st.Kind == store.AuthPassword {
			v.Provider = "Password (IMAP)"
		}
		if v.Connected && st.Account != "" && !strings.EqualFold(st.Account, mb.Address) {
			v.Account = st.Account
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
				v.LastRefreshRel = agoFrom(st.LastRefreshAt, now)
				if now.Sub(st.LastRefreshAt) >= oauth.Day {
					v.LastRefreshRel = dateText(st.LastRefreshAt) + " · " + relDays(st.LastRefreshAt, now)
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
		if v.Quarantine, v.QuarantineCount, err = h.quarantineFor(r, mb.ID, now); err != nil {
			h.serverError(w, r, err)
			return
		}
		p.Mailboxes = append(p.Mailboxes, v)
	}
	notices, err := h.db.Notices(ctx, store.NoticeFilter{UnreadOnly: true, Limit: 50})
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	for _, n := range notices {
		nv := noticeView{Notice: n, Rel: agoFrom(n.CreatedAt, now)}
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
		st.State, st.Code = store.AuthNeedsReauth, codeNotConnected
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
	if kind == "retry" {
		return h.retryFlash(r, id)
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
			return msg + ". It stays authorized until revoked; Postdesk refreshes it daily."
		}
		return msg + ". Authorization due again on " + dateText(a.ReauthDueAt) + "."
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
