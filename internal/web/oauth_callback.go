package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

// oauthErrorPage is the data of a refused sign-in.
type oauthErrorPage struct {
	page
	Message   string
	Code      string
	MailboxID int64  // 0: unknown, no "Try again"
	Address   string // the mailbox, when known
	// WrongAccount: another account signed in; offer to allow it.
	WrongAccount bool
	// Unchanged: say that nothing changed (oauth.FlowError.Changed).
	Unchanged bool
	// NotConnected: the mailbox never signed in (a cancelled sign-in right
	// after "Add a mailbox"): offer to remove it as well as to try again.
	NotConnected bool
}

// oauthCallback finishes Connect / Reauthenticate: the provider sends the
// browser here with a code (or an error) and the state Begin made. The
// state is bound to this admin's session; a refused answer changes nothing
// and shows why, with a way to start again.
func (h *Handler) oauthCallback(w http.ResponseWriter, r *http.Request) {
	if h.oauth == nil {
		h.notFoundEmails(w, r, "No sign-in provider is configured, so there is no sign-in to finish.")
		return
	}
	ctx := r.Context()
	res, err := h.oauth.Complete(ctx, current(r).sess.ID, r.URL.Query())
	var fe *oauth.FlowError
	if errors.As(err, &fe) {
		p := oauthErrorPage{page: h.base(r, "emails"), Message: fe.Message, Code: fe.Code, MailboxID: fe.MailboxID,
			WrongAccount: errors.Is(fe, oauth.ErrWrongAccount), Unchanged: !fe.Changed}
		if fe.MailboxID != 0 {
			mb, err := h.db.Mailbox(ctx, fe.MailboxID)
			switch {
			case errors.Is(err, store.ErrNotFound):
				p.MailboxID = 0
			case err != nil:
				h.serverError(w, r, err)
				return
			default:
				p.Address = mb.Address
				if h.oauth != nil {
					if st, err := h.oauth.Status(ctx, mb.ID); err == nil {
						p.NotConnected = st.NotConnected
					}
				}
			}
		}
		h.log.Info("mailbox sign-in refused", "mailbox_id", fe.MailboxID, "reason", fe.Err, "code", fe.Code, "user_id", current(r).user.ID)
		if p.MailboxID != 0 {
			if pr, ok := h.providerOf(r, p.MailboxID); ok {
				w.Header().Set("Content-Security-Policy", pageCSP(cspOptions{formTargets: []string{origin(pr.AuthURL)}}))
			}
		}
		h.render(w, r, http.StatusBadRequest, "oauth_error", p)
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.log.Info("mailbox connected", "mailbox_id", res.MailboxID, "provider", res.Provider, "user_id", current(r).user.ID)
	h.setFlash(w, "connected", res.MailboxID)
	http.Redirect(w, r, "/admin/emails#mailbox-"+strconv.FormatInt(res.MailboxID, 10), http.StatusSeeOther)
}

// providerOf is the provider a mailbox signs in with.
func (h *Handler) providerOf(r *http.Request, mailboxID int64) (oauth.Provider, bool) {
	a, err := h.db.MailboxAuth(r.Context(), mailboxID)
	if err != nil {
		return oauth.Provider{}, false
	}
	return h.oauth.Provider(a.Provider)
}
