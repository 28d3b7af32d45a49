package web

import (
	"net/http"

	"github.com/postdesk/postdesk/internal/desk"
)

// routes is the one route table of the pages. Handlers wrapped in
// h.signedIn need a session; h.form also checks the session's CSRF token;
// h.uploadForm is h.form for a form with files, with its own body limit;
// h.admin and h.adminForm also need the admin role.
func (h *Handler) routes() http.Handler {
	mux := http.NewServeMux()

	mux.HandleFunc("GET /static/{name}", h.static)

	mux.HandleFunc("GET /login", h.loginForm)
	mux.HandleFunc("POST /login", h.loginSubmit)
	mux.HandleFunc("POST /logout", h.form(h.logout))
	mux.HandleFunc("GET /invite/{token}", h.inviteForm) // the link is the credential: see invite.go
	mux.HandleFunc("POST /invite/{token}", h.inviteSubmit)

	mux.HandleFunc("GET /profile", h.signedIn(h.profile))
	mux.HandleFunc("POST /profile", h.form(h.profileSave))
	mux.HandleFunc("POST /profile/password", h.form(h.profilePassword))
	mux.HandleFunc("POST /profile/apikeys", h.form(h.keyCreate))
	mux.HandleFunc("POST /profile/apikeys/{id}/revoke", h.form(h.keyRevoke))

	mux.HandleFunc("GET /{$}", h.signedIn(h.home))
	mux.HandleFunc("GET /tickets", h.signedIn(h.ticketList))
	mux.HandleFunc("GET /tickets/changes", h.signedIn(h.ticketChanges))
	mux.HandleFunc("GET /tickets/{id}", h.signedIn(h.ticketShow))
	mux.HandleFunc("POST /tickets/assign", h.form(h.ticketsAssign))
	mux.HandleFunc("POST /tickets/{id}/assign", h.form(h.ticketAssign))
	mux.HandleFunc("POST /tickets/{id}/notes", h.form(h.ticketNote))
	mux.HandleFunc("POST /tickets/{id}/status", h.form(h.ticketStatus))
	mux.HandleFunc("POST /tickets/{id}/replies", h.uploadForm(desk.MaxReplyAttachmentBytes, h.ticketReply))
	mux.HandleFunc("POST /tickets/{id}/replies/{msg}/retry", h.form(h.replyRetry))
	mux.HandleFunc("POST /tickets/{id}/replies/{msg}/mark-sent", h.form(h.replyMarkSent))

	mux.HandleFunc("GET /attachments/{id}", h.signedIn(h.attachment))
	mux.HandleFunc("GET /messages/{id}/raw", h.signedIn(h.messageRaw))
	mux.HandleFunc("GET /messages/{id}/cid/{cid}", h.messageCID) // signed link or session: see cid.go

	mux.HandleFunc("GET /admin/emails", h.admin(h.emails))
	mux.HandleFunc("POST /admin/emails", h.adminForm(h.emailAdd))
	mux.HandleFunc("GET /admin/emails/new", h.admin(h.emailNew))
	mux.HandleFunc("POST /admin/emails/new", h.adminForm(h.emailNewSubmit))
	mux.HandleFunc("GET /admin/emails/{id}/edit", h.admin(h.emailEdit))
	mux.HandleFunc("POST /admin/emails/{id}/edit", h.adminForm(h.emailEditSubmit))
	mux.HandleFunc("POST /admin/emails/{id}/pause", h.adminForm(h.emailPause))
	mux.HandleFunc("POST /admin/emails/{id}/resume", h.adminForm(h.emailResume))
	mux.HandleFunc("GET /admin/emails/{id}/remove", h.admin(h.emailRemoveConfirm))
	mux.HandleFunc("POST /admin/emails/{id}/remove", h.adminForm(h.emailRemove))
	mux.HandleFunc("POST /admin/emails/{id}/connect", h.adminForm(h.emailConnect))
	mux.HandleFunc("POST /admin/emails/{id}/max-age", h.adminForm(h.emailMaxAge))
	mux.HandleFunc("POST /admin/emails/{id}/transport", h.adminForm(h.emailTransport))
	mux.HandleFunc("GET /admin/users", h.admin(h.users))
	mux.HandleFunc("POST /admin/users", h.adminForm(h.userAdd))
	mux.HandleFunc("GET /admin/users/{id}", h.admin(h.userShow))
	mux.HandleFunc("POST /admin/users/{id}/role", h.adminForm(h.userRole))
	mux.HandleFunc("POST /admin/users/{id}/disable", h.adminForm(h.userDisable))
	mux.HandleFunc("POST /admin/users/{id}/enable", h.adminForm(h.userEnable))
	mux.HandleFunc("POST /admin/users/{id}/reset", h.adminForm(h.userReset))
	mux.HandleFunc("POST /admin/notices/{id}/dismiss", h.adminForm(h.noticeDismiss))
	mux.HandleFunc("GET /admin/quarantine/{id}/source", h.admin(h.quarantineSource))
	mux.HandleFunc("POST /admin/quarantine/{id}/retry", h.adminForm(h.quarantineRetry))
	mux.HandleFunc("GET /admin/webhooks", h.admin(h.webhooks))
	mux.HandleFunc("POST /admin/webhooks", h.adminForm(h.webhookAdd))
	mux.HandleFunc("GET /admin/webhooks/{id}", h.admin(h.webhook))
	mux.HandleFunc("POST /admin/webhooks/{id}", h.adminForm(h.webhookSave))
	mux.HandleFunc("POST /admin/webhooks/{id}/test", h.adminForm(h.webhookTest))
	mux.HandleFunc("POST /admin/webhooks/{id}/secret", h.adminForm(h.webhookSecret))
	mux.HandleFunc("GET /admin/webhooks/{id}/delete", h.admin(h.webhookDeleteConfirm))
	mux.HandleFunc("POST /admin/webhooks/{id}/delete", h.adminForm(h.webhookDelete))
	// The provider's redirect back; bound to the admin's session (the
	// cookie is SameSite=Lax, so it comes along on this top-level GET).
	mux.HandleFunc("GET /oauth/callback", h.admin(h.oauthCallback))

	mux.HandleFunc("/", h.signedIn(h.notFoundPage))

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(h.csrfFailed))
	return cop.Handler(mux)
}
