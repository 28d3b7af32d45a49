package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

// mailboxResponse is a support address with how it signs in, where its
// mail is fetched and how the fetching goes. It never holds a secret: no
// password, token or sealed value leaves the server.
type mailboxResponse struct {
	ID        int64  `json:"id"`
	Address   string `json:"address"`
	Name      string `json:"name"`
	Signature string `json:"signature"`
	// AckEnabled: a new ticket's requester gets an acknowledgement,
	// written from AckTemplate (Postdesk's default text when none was set).
	AckEnabled  bool      `json:"ack_enabled"`
	AckTemplate string    `json:"ack_template"`
	CreatedAt   time.Time `json:"created_at"`
	// RemovedAt is set on a removed mailbox kept for its tickets (GET by
	// id only: lists leave it out).
	RemovedAt *time.Time `json:"removed_at"`
	// Health is how urgently the mailbox needs an admin, decided as Admin
	// -> Emails decides it (desk.HealthOf): needs_reauth, failing,
	// expiring, not_connected, ok, paused.
	Health string          `json:"health"`
	SignIn signInResponse  `json:"sign_in"`
	Server *serverResponse `json:"server"` // null: not fetched (a mailbox made by an import)
	Sync   syncResponse    `json:"sync"`
	// Sending is how its replies go out (outbox counts, the last
	// mailbox-wide sending problem).
	Sending sendingResponse `json:"sending"`
	// Message tells what a change did besides what was asked, in plain
	// words: "... so Postdesk forgot the mailbox's sign-in ...".
	Message string `json:"message,omitempty"`
}

// signInResponse is how a mailbox signs in to its mail server.
type signInResponse struct {
	Kind         string     `json:"kind"`     // none, oauth, password
	Provider     string     `json:"provider"` // OAuth only
	Account      string     `json:"account"`  // who signed in; a password mailbox's login
	State        string     `json:"state"`    // ok, expiring, needs_reauth, provider_fault, not_connected
	Reason       string     `json:"reason"`   // why, in plain words, when not ok
	AuthorizedAt *time.Time `json:"authorized_at"`
	ReauthDueAt  *time.Time `json:"reauth_due_at"`
	ExpiresAt    *time.Time `json:"expires_at"`
}

type serverResponse struct {
	IMAPHost        string   `json:"imap_host"`
	IMAPPort        int      `json:"imap_port"`
	IMAPSecurity    string   `json:"imap_security"`
	SMTPHost        string   `json:"smtp_host"`
	SMTPPort        int      `json:"smtp_port"`
	SMTPSecurity    string   `json:"smtp_security"`
	AuthMethod      string   `json:"auth_method"`
	Username        string   `json:"username"`
	Folders         []string `json:"folders"`
	AfterProcessing string   `json:"after_processing"`
	MoveTo          string   `json:"move_to"`
	InitialDays     int      `json:"initial_days"`
	MaxAgeDays      int      `json:"max_age_days"`
	Enabled         bool     `json:"enabled"`
	// SaveSent: a copy of each sent reply is appended to the Sent folder
	// (off for Microsoft 365 and Gmail, which save it themselves).
	SaveSent bool `json:"save_sent"`
	// FetchTransport is imap or graph, SendTransport smtp or graph
	// (Microsoft Graph, for Microsoft 365 mailboxes; docs/graph.md).
	FetchTransport string `json:"fetch_transport"`
	SendTransport  string `json:"send_transport"`
}

type syncResponse struct {
	State         string     `json:"state"`
	LastSuccessAt *time.Time `json:"last_success_at"`
	LastError     string     `json:"last_error"`
	MessagesToday int        `json:"messages_today"`
}

type mailboxesResponse struct {
	Mailboxes []mailboxResponse `json:"mailboxes"`
}

// mailboxRequest is the body of POST and PATCH /mailboxes: a field left out
// (or null) is not given. Password is write-only.
type mailboxRequest struct {
	Address         *string   `json:"address"`
	Name            *string   `json:"name"`
	Auth            *string   `json:"auth"`
	IMAPHost        *string   `json:"imap_host"`
	IMAPPort        *int      `json:"imap_port"`
	IMAPSecurity    *string   `json:"imap_security"`
	SMTPHost        *string   `json:"smtp_host"`
	SMTPPort        *int      `json:"smtp_port"`
	SMTPSecurity    *string   `json:"smtp_security"`
	AuthMethod      *string   `json:"auth_method"`
	Username        *string   `json:"username"`
	Password        *string   `json:"password"`
	Folders         *[]string `json:"folders"`
	AfterProcessing *string   `json:"after_processing"`
	MoveTo          *string   `json:"move_to"`
	InitialDays     *int      `json:"initial_days"`
	MaxAgeDays      *int      `json:"max_age_days"`
	Enabled         *bool     `json:"enabled"`
	Signature       *string   `json:"signature"`
	SaveSent        *bool     `json:"save_sent"`
	AckEnabled      *bool     `json:"ack_enabled"`
	AckTemplate     *string   `json:"ack_template"`
	FetchTransport  *string   `json:"fetch_transport"`
	SendTransport   *string   `json:"send_transport"`
}

// applyTo changes the fields of spec the request gives.
func (m mailboxRequest) applyTo(spec *desk.MailboxSpec) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	setInt := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	set(&spec.Address, m.Address)
	set(&spec.Name, m.Name)
	set(&spec.Auth, m.Auth)
	set(&spec.IMAPHost, m.IMAPHost)
	setInt(&spec.IMAPPort, m.IMAPPort)
	set(&spec.IMAPSecurity, m.IMAPSecurity)
	set(&spec.SMTPHost, m.SMTPHost)
	setInt(&spec.SMTPPort, m.SMTPPort)
	set(&spec.SMTPSecurity, m.SMTPSecurity)
	set(&spec.AuthMethod, m.AuthMethod)
	set(&spec.Username, m.Username)
	set(&spec.Password, m.Password)
	set(&spec.AfterProcessing, m.AfterProcessing)
	set(&spec.MoveTo, m.MoveTo)
	set(&spec.Signature, m.Signature)
	if m.Folders != nil {
		spec.Folders = *m.Folders
	}
	if m.InitialDays != nil {
		spec.InitialDays = m.InitialDays
	}
	if m.MaxAgeDays != nil {
		spec.MaxAgeDays = m.MaxAgeDays
	}
	if m.Enabled != nil {
		spec.Disabled = !*m.Enabled
	}
	if m.SaveSent != nil {
		saveSent := *m.SaveSent
		spec.SaveSent = &saveSent
	}
	if m.AckEnabled != nil {
		spec.AckEnabled = *m.AckEnabled
	}
	set(&spec.AckTemplate, m.AckTemplate)
	set(&spec.FetchTransport, m.FetchTransport)
	set(&spec.SendTransport, m.SendTransport)
}

// adminOnly lets only admins through to next, and only when the server
// can administer mailboxes.
func (h *handler) adminOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if currentUser(r).Role != store.RoleAdmin {
			writeError(w, r, http.StatusForbidden, "only admins can manage mailboxes")
			return
		}
		if h.admin == nil {
			writeError(w, r, http.StatusServiceUnavailable, "mailbox administration is not available")
			return
		}
		next(w, r)
	}
}

// getMailboxes lists every support address, by address.
func (h *handler) getMailboxes(w http.ResponseWriter, r *http.Request) {
	list, err := h.db.Mailboxes(r.Context())
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	out := mailboxesResponse{Mailboxes: make([]mailboxResponse, 0, len(list))}
	for _, m := range list {
		if m.Removed() {
			continue // kept for its tickets only
		}
		mr, err := h.mailboxResponse(r, m)
		if err != nil {
			writeInternalError(w, r, err)
			return
		}
		out.Mailboxes = append(out.Mailboxes, mr)
	}
	writeJSON(w, r, http.StatusOK, out)
}

// getMailbox answers one mailbox.
func (h *handler) getMailbox(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "mailboxID", "mailbox")
	if !ok {
		return
	}
	m, err := h.db.Mailbox(r.Context(), id)
	if err != nil {
		writeMailboxError(w, r, id, err)
		return
	}
	h.writeMailbox(w, r, http.StatusOK, m) // a removed one too: its tickets name it
}

// createMailbox adds a mailbox. An OAuth mailbox must then be connected by
// an admin signing in (Admin -> Emails); a password mailbox is fetched as
// soon as the sync sees it.
func (h *handler) createMailbox(w http.ResponseWriter, r *http.Request) {
	var req mailboxRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	var spec desk.MailboxSpec
	req.applyTo(&spec)
	m, err := h.admin.AddMailbox(r.Context(), spec)
	if err != nil {
		writeMailboxError(w, r, 0, err)
		return
	}
	w.Header().Set("Location", Prefix+"mailboxes/"+strconv.FormatInt(m.ID, 10))
	h.writeMailbox(w, r, http.StatusCreated, m)
}

// updateMailbox changes the fields the request gives and keeps the others.
func (h *handler) updateMailbox(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "mailboxID", "mailbox")
	if !ok {
		return
	}
	var req mailboxRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Password != nil && *req.Password == "" {
		writeError(w, r, http.StatusUnprocessableEntity, "the password is empty: leave the field out to keep the current one")
		return
	}
	spec, err := h.admin.Spec(r.Context(), id)
	if err != nil {
		writeMailboxError(w, r, id, err)
		return
	}
	req.applyTo(&spec)
	up, err := h.admin.UpdateMailbox(r.Context(), id, spec)
	if err != nil {
		writeMailboxError(w, r, id, err)
		return
	}
	mr, err := h.mailboxResponse(r, up.Mailbox)
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	mr.Message = up.Notice
	writeJSON(w, r, http.StatusOK, mr)
}

type deleteMailboxResponse struct {
	Deleted bool   `json:"deleted"`
	Message string `json:"message"`
}

// deleteMailbox stops fetching a mailbox and forgets its credentials. Its
// tickets stay; a mailbox that never received mail is deleted entirely.
func (h *handler) deleteMailbox(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "mailboxID", "mailbox")
	if !ok {
		return
	}
	m, err := h.db.Mailbox(r.Context(), id)
	if err != nil {
		writeMailboxError(w, r, id, err)
		return
	}
	deleted, err := h.admin.RemoveMailboxID(r.Context(), id)
	if err != nil {
		writeMailboxError(w, r, id, err)
		return
	}
	out := deleteMailboxResponse{Deleted: deleted, Message: fmt.Sprintf("removed mailbox %s", m.Address)}
	if !deleted {
		out.Message = fmt.Sprintf("stopped fetching %s and forgot its credentials; its tickets stay", m.Address)
	}
	writeJSON(w, r, http.StatusOK, out)
}

// writeMailbox answers m with its sign-in, server and sync.
func (h *handler) writeMailbox(w http.ResponseWriter, r *http.Request, status int, m store.Mailbox) {
	mr, err := h.mailboxResponse(r, m)
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	writeJSON(w, r, status, mr)
}

// writeMailboxError answers an error of a mailbox operation: the caller's
// mistake is 422 (409 for an address that is taken), a missing mailbox 404,
// anything else 500.
func writeMailboxError(w http.ResponseWriter, r *http.Request, id int64, err error) {
	switch {
	case errors.Is(err, desk.ErrExists):
		writeInvalid(w, r, http.StatusConflict, err)
	case errors.Is(err, desk.ErrInvalid):
		writeInvalid(w, r, http.StatusUnprocessableEntity, err)
	case errors.Is(err, store.ErrNotFound):
		writeError(w, r, http.StatusNotFound, fmt.Sprintf("mailbox %d not found", id))
	default:
		writeInternalError(w, r, err)
	}
}

// unreachable is what agents read instead of a failing sync's error: the
// error names internal hosts and how connecting to them failed, which is
// for admins (an agent's key would otherwise be a port scanner).
const unreachable = "Postdesk cannot reach the mail server; an admin can see why in Admin -> Emails."

// mailboxResponse reads what the API shows of m besides its own row, to
// the user of r: admins see a failing sync's error, agents a plain
// sentence.
func (h *handler) mailboxResponse(r *http.Request, m store.Mailbox) (mailboxResponse, error) {
	ctx := r.Context()
	out := mailboxResponse{ID: m.ID, Address: m.Address, Name: m.Name, Signature: m.Signature, AckEnabled: m.AckEnabled, AckTemplate: m.AckTemplate,
		CreatedAt: utc(m.CreatedAt), RemovedAt: timeOrNil(m.RemovedAt),
		SignIn: signInResponse{Kind: string(store.AuthNone), State: "not_connected", Reason: "No sign-in: this mailbox's mail is not fetched."}}
	au, err := h.db.MailboxAuth(ctx, m.ID)
	hasAuth := err == nil
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return out, err
	default:
		out.SignIn = newSignInResponse(au)
	}
	srv, err := h.db.MailboxServer(ctx, m.ID)
	enabled := err == nil && srv.Enabled
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return out, err
	default:
		out.Server = &serverResponse{IMAPHost: srv.IMAPHost, IMAPPort: srv.IMAPPort, IMAPSecurity: srv.IMAPSecurity,
			SMTPHost: srv.SMTPHost, SMTPPort: srv.SMTPPort, SMTPSecurity: srv.SMTPSecurity, AuthMethod: srv.AuthMethod,
			Username: srv.Username, Folders: srv.Folders, AfterProcessing: srv.AfterProcessing, MoveTo: srv.MoveTo,
			InitialDays: srv.InitialDays, MaxAgeDays: srv.MaxAgeDays, Enabled: srv.Enabled, SaveSent: srv.SaveSent,
			FetchTransport: srv.FetchTransport, SendTransport: srv.SendTransport}
	}
	st, err := h.db.SyncStatus(ctx, m.ID)
	if err != nil {
		return out, err
	}
	out.Health = desk.HealthOf(au, hasAuth, enabled || out.Server == nil, st).String()
	out.Sync = syncResponse{State: string(st.State), LastSuccessAt: timeOrNil(st.LastSuccessAt), LastError: st.LastError}
	if st.LastError != "" && currentUser(r).Role != store.RoleAdmin {
		out.Sync.LastError = unreachable
	}
	if st.Day == time.Now().UTC().Format(time.DateOnly) {
		out.Sync.MessagesToday = st.MessagesDay
	}
	if out.AckTemplate == "" {
		out.AckTemplate = desk.DefaultAckTemplate
	}
	out.Sending, err = h.sendingResponse(r, m.ID)
	return out, err
}

// newSignInResponse shows a mailbox's authorization as last recorded,
// without its secrets.
func newSignInResponse(au store.MailboxAuth) signInResponse {
	out := signInResponse{Kind: string(au.Kind), Provider: au.Provider, Account: au.Account, State: string(au.State),
		Reason: au.Error, AuthorizedAt: timeOrNil(au.AuthorizedAt), ReauthDueAt: timeOrNil(au.ReauthDueAt), ExpiresAt: timeOrNil(au.ExpiresAt)}
	switch {
	case au.Kind == store.AuthNone:
		out.State, out.Reason = "not_connected", "No sign-in: this mailbox's mail is not fetched."
	case au.Kind == store.AuthOAuth && au.AuthorizedAt.IsZero() && au.RefreshTokenSealed == "":
		out.State, out.Reason = "not_connected", "Not connected yet: an admin signs in with the mailbox's account in Admin -> Emails."
	}
	return out
}
