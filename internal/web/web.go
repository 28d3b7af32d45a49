// Package web serves Postdesk's pages: sign-in, the ticket list, a ticket's
// conversation with its forms (the reply composer, the internal note, the
// status), attachments and message sources, every user's profile (name,
// time zone, notifications, password, own API keys), the invitation page,
// and for admins Admin -> Emails (add with Test connection, edit, pause,
// resume, remove, the OAuth connect flow and its callback, notices,
// activity) and Admin -> Users (add, role, disable, reset password).
// Pages are server-rendered with html/template and work without JavaScript.
//
// Design and invariants:
//   - One route table (routes.go); one file per page or action; after a form
//     POST the handler redirects.
//   - Every mailbox change goes through desk.Admin, as for the API and the
//     CLI; the pages only translate its typed refusals (a field and a
//     sentence), shown beside their fields.
//   - Templates and the stylesheet are embedded and parsed once in New; a
//     view that is rendered but not declared, or declared but missing, stops
//     New with an error rather than failing on a request.
//   - Every page but /login needs a session cookie (auth.Service). Every POST
//     carries a CSRF token in a hidden "csrf" field: the session's token, or
//     for the sign-in form a double-submit cookie. Cross-origin POSTs are also
//     refused by net/http's CrossOriginProtection.
//   - Replies go through desk.Reply, as for the API; the page shows each
//     outgoing message's delivery in words made in one place
//     (describeDelivery), and the API answers the state itself. The reply
//     form is the one form with files: h.uploadForm bounds its body (the
//     attachments' limit plus a margin) and keeps the agent's text when the
//     files are too large.
//   - Every response has a strict Content-Security-Policy. A customer's HTML
//     is sanitized (mailmsg.SanitizeHTML) and then shown only inside an
//     <iframe sandbox srcdoc> with neither allow-scripts nor
//     allow-same-origin, under its own CSP, so even markup the sanitizer
//     missed cannot run script, reach our origin, or fetch from elsewhere.
//   - Sign-in limits are auth's: a back-off answers 429 and too many
//     password checks at once 503, both with Retry-After and a sentence
//     that never tells whether the account exists.
//   - Admin pages (h.admin, h.adminForm) answer agents with 403.
//   - The OAuth callback is bound to the admin's session (oauth.Service
//     checks the state against it); a refused callback changes nothing and
//     says what to do next. Tokens never reach a page.
//   - Every user change goes through auth.Service (as for the API and the
//     CLI); a password, invitation link or API key is shown once, in the
//     answer to the POST that made it (the one exception to redirect after
//     POST), never stored in the clear nor shown again.
//   - Every time a page shows is in the viewer's time zone (zone.go).
//   - Internal errors are logged with a short incident id and never shown.
package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

// Options are what the pages need.
type Options struct {
	DB     *store.DB
	Auth   *auth.Service
	Desk   *desk.Desk
	Logger *slog.Logger
	// SecureCookies sets the Secure flag on cookies (when served over https).
	SecureCookies bool
	// HSTS makes every page send Strict-Transport-Security (RFC 6797), so
	// browsers never reach Postdesk over plain http again: set it when the
	// base URL is https.
	HSTS bool
	// Version is shown in the page footer.
	Version string
	// Banners, when set, returns the banners shown at the top of every
	// signed-in page (for example a mailbox whose authorization expires).
	Banners func(ctx context.Context) []Banner
	// OAuth connects mailboxes through their providers' sign-in pages
	// (Admin -> Emails and /oauth/callback). Nil: Admin -> Emails lists the
	// mailboxes and explains that no sign-in provider is configured.
	OAuth *oauth.Service
	// Admin adds mailboxes (Admin -> Emails) with the rules every surface
	// shares; nil: one is made from OAuth's providers.
	Admin *desk.Admin
	// Ingest retries quarantined emails from Admin -> Emails (nil: the
	// Retry button answers that it is not available).
	Ingest *ingest.Ingester
	// Now is the clock of relative times on Admin -> Emails (nil:
	// time.Now); pass the one OAuth uses.
	Now func() time.Time
	// BaseURL is the address users reach Postdesk at, for the invitation
	// links of Admin -> Users ("": the request's own scheme and host).
	BaseURL string
	// TrustedProxies are reverse proxies whose X-Forwarded-For header
	// names the client; from anywhere else the peer address is the client.
	TrustedProxies []netip.Prefix
	// Webhooks manages Admin -> Webhooks (nil: the page says webhooks are
	// not available).
	Webhooks *desk.WebhookAdmin
	// ListPoll is how often the ticket list asks whether something changed
	// (default 15 s).
	ListPoll time.Duration
}

// Banner levels.
const (
	BannerWarning = "warning"
	BannerUrgent  = "urgent" // a louder warning: something is overdue
	BannerDanger  = "danger"
)

// Banner is a message shown at the top of every signed-in page.
type Banner struct {
	Level    string // BannerWarning, BannerUrgent or BannerDanger
	Title    string // short, bold: "support@example.com needs reauthentication"
	Text     string // one sentence: what happens and until when
	LinkURL  string // optional: where to fix it (a local path)
	LinkText string // optional: "Reauthenticate"
}

// Handler serves every page path. It is safe for concurrent use.
type Handler struct {
	db            *store.DB
	auth          *auth.Service
	desk          *desk.Desk
	log           *slog.Logger
	secureCookies bool
	hsts          bool
	mailboxes     *desk.Admin
	version       string
	banners       func(ctx context.Context) []Banner
	oauth         *oauth.Service
	ingest        *ingest.Ingester
	now           func() time.Time
	proxies       []netip.Prefix
	baseURL       string
	hooks         *desk.WebhookAdmin
	listPoll      time.Duration

	views  *zonedViews
	zones  zones
	assets *assets
	mux    http.Handler

	// sanitize turns a customer's HTML into markup safe to show; tests swap
	// it to prove the iframe sandbox holds on its own.
	sanitize func(html string, opts mailmsg.SanitizeOptions) mailmsg.Sanitized
}

// New parses the templates and assets and returns the pages' handler.
func New(opts Options) (*Handler, error) {
	if opts.DB == nil || opts.Auth == nil || opts.Desk == nil {
		return nil, errors.New("web: DB, Auth and Desk are required")
	}
	h := &Handler{
		db:            opts.DB,
		auth:          opts.Auth,
		desk:          opts.Desk,
		log:           opts.Logger,
		secureCookies: opts.SecureCookies,
		hsts:          opts.HSTS,
		version:       opts.Version,
		banners:       opts.Banners,
		oauth:         opts.OAuth,
		mailboxes:     opts.Admin,
		ingest:        opts.Ingest,
		now:           opts.Now,
		proxies:       opts.TrustedProxies,
		baseURL:       opts.BaseURL,
		hooks:         opts.Webhooks,
		listPoll:      opts.ListPoll,
		sanitize:      mailmsg.SanitizeHTML,
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.listPoll <= 0 {
		h.listPoll = 15 * time.Second
	}
	if h.mailboxes == nil {
		// Without a vault, password mailboxes are refused with a sentence.
		var providers func(string) (oauth.Provider, bool)
		if h.oauth != nil {
			providers = desk.Providers(h.oauth.Providers())
		}
		h.mailboxes = desk.NewAdmin(h.db, nil, providers)
		h.mailboxes.OAuth = h.oauth
	}
	var err error
	if h.assets, err = loadAssets(); err != nil {
		return nil, err
	}
	if h.views, err = newZonedViews(h.assets); err != nil {
		return nil, err
	}
	h.mux = h.routes()
	return h, nil
}

// hstsValue keeps browsers on https for two years (RFC 6797 6.1.1). No
// includeSubDomains: Postdesk does not speak for its parent domain's hosts.
const hstsValue = "max-age=63072000"

// ServeHTTP sets the security headers every response carries and routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", pageCSP(cspOptions{}))
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
	if h.hsts {
		hd.Set("Strict-Transport-Security", hstsValue)
	}
	h.mux.ServeHTTP(w, r)
}
