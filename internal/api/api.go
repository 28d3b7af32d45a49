// Package api is Postdesk's JSON API under /api/v1.
//
// Every request is authenticated with an API key sent as
// "Authorization: Bearer <key>" (RFC 6750 2.1); the key's user is the actor
// of every change. Handlers have one shape: decode the request, validate it,
// call the store or desk, respond. They answer JSON only, and every failure
// has the same body, {"error": "message"}, with a status that says whose
// fault it was: 4xx messages tell the client what to fix, 5xx messages carry
// an incident id and never the internal error, which is logged under that id.
//
// Every user manages their own API keys under /me/apikeys: a key made
// with a key that expires cannot outlive it.
//
// Mailbox administration (POST, PATCH and DELETE /mailboxes) is for admins
// only and goes through desk.Admin, which validates the settings and seals
// passwords; everyone may read mailboxes and their settings. Quarantined
// emails (/quarantine: those that could not be stored) are for admins
// only; a retry goes through ingest, like a fetched email.
//
// Invariants:
//   - Email HTML leaves the server only after mailmsg.SanitizeHTML, with
//     remote images blocked.
//   - A mailbox's password, tokens and sealed values are never written to
//     a response: passwords are write-only.
//   - An API key is never written to a response or a log; the log line of a
//     request names the key by its id.
//   - Request bodies are JSON objects of at most 1 MiB whose fields are all
//     known; anything else is refused before a handler runs its logic.
package api

import (
	"log/slog"
	"net/http"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/store"
)

// Prefix is the path every API route starts with.
const Prefix = "/api/v1/"

// Options are the API's dependencies. DB, Auth and Desk are required.
type Options struct {
	DB   *store.DB
	Auth *auth.Service
	Desk *desk.Desk
	// Admin performs the admins' mailbox operations; nil: POST, PATCH and
	// DELETE /mailboxes answer 503.
	Admin *desk.Admin
	// Ingest retries quarantined emails; nil: the /quarantine routes answer 503.
	Ingest *ingest.Ingester
	Logger *slog.Logger
}

type handler struct {
	db     *store.DB
	auth   *auth.Service
	desk   *desk.Desk
	admin  *desk.Admin
	ingest *ingest.Ingester
	log    *slog.Logger
	routes *http.ServeMux
}

// New returns the handler of every path under /api/v1/. Mount it with
// mux.Handle("/api/v1/", h). It panics when a required dependency is missing.
func New(opts Options) http.Handler {
	if opts.DB == nil || opts.Auth == nil || opts.Desk == nil {
		panic("api.New: Options.DB, Options.Auth and Options.Desk are required")
	}
	h := &handler{db: opts.DB, auth: opts.Auth, desk: opts.Desk, admin: opts.Admin, ingest: opts.Ingest, log: opts.Logger, routes: http.NewServeMux()}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}

	// The route table. GET patterns also answer HEAD.
	m := h.routes
	m.HandleFunc("GET /api/v1/me", h.getMe)
	m.HandleFunc("GET /api/v1/me/apikeys", h.getMyAPIKeys)
	m.HandleFunc("POST /api/v1/me/apikeys", h.createMyAPIKey)
	m.HandleFunc("DELETE /api/v1/me/apikeys/{keyID}", h.deleteMyAPIKey)
	m.HandleFunc("GET /api/v1/users", h.getUsers)
	m.HandleFunc("GET /api/v1/mailboxes", h.getMailboxes)
	m.HandleFunc("POST /api/v1/mailboxes", h.adminOnly(h.createMailbox))
	m.HandleFunc("POST /api/v1/mailboxes/test", h.adminOnly(h.testMailbox))
	m.HandleFunc("GET /api/v1/mailboxes/{mailboxID}", h.getMailbox)
	m.HandleFunc("PATCH /api/v1/mailboxes/{mailboxID}", h.adminOnly(h.updateMailbox))
	m.HandleFunc("POST /api/v1/mailboxes/{mailboxID}/test", h.adminOnly(h.testSavedMailbox))
	m.HandleFunc("DELETE /api/v1/mailboxes/{mailboxID}", h.adminOnly(h.deleteMailbox))
	m.HandleFunc("GET /api/v1/tickets", h.getTickets)
	m.HandleFunc("POST /api/v1/tickets/assign", h.assignTickets)
	m.HandleFunc("GET /api/v1/tickets/{ticketID}", h.getTicket)
	m.HandleFunc("PATCH /api/v1/tickets/{ticketID}", h.updateTicket)
	m.HandleFunc("POST /api/v1/tickets/{ticketID}/notes", h.createNote)
	m.HandleFunc("POST /api/v1/tickets/{ticketID}/replies", h.createReply)
	m.HandleFunc("POST /api/v1/tickets/{ticketID}/replies/{messageID}/retry", h.retryReply)
	m.HandleFunc("POST /api/v1/tickets/{ticketID}/replies/{messageID}/mark-sent", h.markReplySent)
	m.HandleFunc("GET /api/v1/messages/{messageID}/raw", h.getRawMessage)
	m.HandleFunc("GET /api/v1/attachments/{attachmentID}", h.getAttachment)
	m.HandleFunc("GET /api/v1/quarantine", h.adminQuarantine(h.getQuarantine))
	m.HandleFunc("GET /api/v1/quarantine/{quarantineID}", h.adminQuarantine(h.getQuarantined))
	m.HandleFunc("GET /api/v1/quarantine/{quarantineID}/source", h.adminQuarantine(h.getQuarantinedSource))
	m.HandleFunc("POST /api/v1/quarantine/{quarantineID}/retry", h.adminQuarantine(h.retryQuarantined))
	m.HandleFunc("/", h.noRoute) // 404 or 405, as JSON

	// Outermost first: log the request, recover a panic, check the key.
	return h.logRequests(h.recoverPanics(h.authenticate(h.limitBody(m))))
}
