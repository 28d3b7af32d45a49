package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/postdesk/postdesk/internal/api"
	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/config"
	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/jobs"
	"github.com/postdesk/postdesk/internal/mailsync"
	"github.com/postdesk/postdesk/internal/notification"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/web"
)

func runServe(ctx context.Context, e env, args []string) error {
	a, _, done, err := startNew(ctx, e, "serve", args, nil, nil)
	if done {
		return err
	}
	defer a.close()
	cfg := a.cfg
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if cfg.BaseURLFromListen {
		cfg.BaseURL = config.ListenURL(ln.Addr().String()) // the port it got, if it asked for any
	}
	if cfg.SyncOwner == "" {
		// Stable across restarts (a restarted process renews its own leases
		// at once instead of waiting for them to expire) and unique among
		// running processes (no two can listen on one address).
		host, _ := os.Hostname()
		cfg.SyncOwner = host + "/" + ln.Addr().String()
	}
	if a.db.SessionLocks() {
		// Two processes of one name share every lease and take each
		// other's work for their own: the name must be unique (on
		// PostgreSQL a process that died is known not to be running).
		// Seen in the last 20 s (a live one beats every second): a host
		// that lost power leaves its connection open on the server for
		// a while, but stops beating, and is back in more than that.
		live, err := a.db.LiveSyncers(ctx, time.Now().Add(-20*time.Second))
		if err != nil {
			ln.Close()
			return err
		}
		if slices.Contains(live, cfg.SyncOwner) {
			ln.Close()
			return fmt.Errorf("another postdesk serve is running on this database as %q: give each process a name of its own with --sync-owner (POSTDESK_SYNC_OWNER); the default is the host name and listen address", cfg.SyncOwner)
		}
	}
	srv, err := newServer(a)
	if err != nil {
		ln.Close()
		return err
	}
	return srv.run(ctx, ln)
}

// newOAuth builds the mailbox authorization service from the configured
// providers; nil when none is configured.
func newOAuth(a *app, vault *store.Vault, onAuthorized func(ctx context.Context, tx *store.Tx, mailboxID int64) error) (*oauth.Service, error) {
	providers := configuredProviders(a.cfg)
	if len(providers) == 0 {
		a.log.Info("no OAuth provider configured: set POSTDESK_MICROSOFT_CLIENT_ID (or POSTDESK_GOOGLE_CLIENT_ID) to connect mailboxes")
		return nil, nil
	}
	return oauth.New(oauth.Config{DB: a.db, Vault: vault, Providers: providers, Logger: a.log,
		RedirectURL: a.cfg.BaseURL.String() + "/oauth/callback", OnAuthorized: onAuthorized})
}

// configuredProviders are the OAuth providers whose client IDs are set.
func configuredProviders(cfg *config.Config) []oauth.Provider {
	var providers []oauth.Provider
	if id := cfg.MicrosoftClientID; id != "" {
		p := oauth.Microsoft(cfg.MicrosoftTenant, cfg.MicrosoftAuthority)
		p.ClientID, p.ClientSecret = id, cfg.MicrosoftClientSecret
		p.DefaultMaxAge, p.WarnLead = cfg.MicrosoftMaxAge, cfg.WarnLead
		providers = append(providers, p)
	}
	if id := cfg.GoogleClientID; id != "" {
		p := oauth.Google()
		if cfg.GoogleTesting {
			p = oauth.GoogleTesting()
		}
		p.ClientID, p.ClientSecret, p.WarnLead = id, cfg.GoogleClientSecret, cfg.WarnLead
		providers = append(providers, p)
	}
	if g := cfg.Generic; g.ClientID != "" {
		p := oauth.Generic(g.Name, g.AuthURL, g.TokenURL, g.UserinfoURL, g.Scopes)
		p.ClientID, p.ClientSecret, p.WarnLead = g.ClientID, g.ClientSecret, cfg.WarnLead
		p.IMAPHost, p.IMAPPort, p.SMTPHost, p.SMTPPort = g.IMAPHost, g.IMAPPort, g.SMTPHost, g.SMTPPort
		p.RefreshInactivity, p.DefaultMaxAge = g.RefreshInactivity, g.MaxAge
		providers = append(providers, p)
	}
	// Tokens go to each provider's own servers and the hosts trusted here.
	for i := range providers {
		providers[i].MailHosts = append([]string(nil), cfg.OAuthAllowedHosts...)
	}
	return providers
}

// server is a running Postdesk: web, API, metrics and jobs.
type server struct {
	app     *app
	handler http.Handler
	metrics http.Handler // /metrics, without the token check
	jobs    *jobs.Runner
	ingest  *ingest.Ingester
	syncer  *mailsync.Syncer
	oauth   *oauth.Service // nil without a provider
	sender  *jobs.Sender
	events  *jobs.Dispatcher
	notify  *notification.Mailer
}

func newServer(a *app) (*server, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		searchBacklogGauge(a.db))
	vault, err := loadVault(a.cfg)
	if err != nil {
		return nil, err
	}
	if err := checkKeys(context.Background(), a, vault); err != nil {
		return nil, err
	}
	// A completed sign-in releases the mailbox's held replies in its own
	// transaction; the sender needs the oauth service for its tokens.
	var sender *jobs.Sender
	oauthSvc, err := newOAuth(a, vault, func(ctx context.Context, tx *store.Tx, mailboxID int64) error {
		return sender.Authorized(ctx, tx, mailboxID)
	})
	if err != nil {
		return nil, err
	}
	sender, err = jobs.NewSender(jobs.SenderOptions{DB: a.db, OAuth: oauthSvc, Passwords: store.MailboxPasswords(a.db, vault),
		Logger: a.log, Registerer: reg, Owner: a.cfg.SyncOwner})
	if err != nil {
		return nil, err
	}
	hooks, err := jobs.NewWebhooks(jobs.WebhookOptions{DB: a.db, Vault: vault, BaseURL: a.cfg.BaseURL.String(),
		AllowPrivate: a.cfg.WebhookAllowPrivate, Logger: a.log})
	if err != nil {
		return nil, err
	}
	regs := jobs.All(jobs.Core(a.db), hooks.Register)
	if oauthSvc != nil {
		reg.MustRegister(oauthSvc.Collector())
		regs = jobs.All(jobs.Core(a.db), jobs.Auth(oauthSvc), hooks.Register)
	}
	runner, err := jobs.New(a.db, jobs.Options{Logger: a.log, Registerer: reg, Register: regs, Outbox: sender})
	if err != nil {
		return nil, err
	}
	// Events reach their consumers (webhooks, email notifications) through
	// the dispatcher, woken right after each commit that added events.
	events, err := jobs.NewDispatcher(jobs.DispatcherOptions{DB: a.db, Logger: a.log})
	if err != nil {
		return nil, err
	}
	a.db.OnEventsCommitted(events.Wake)
	// Email notifications to agents and admins, through a healthy mailbox's outbox.
	notify, err := notification.New(notification.Options{DB: a.db, OAuth: oauthSvc, Enqueuer: sender, BaseURL: a.cfg.BaseURL,
		SystemMailbox: a.cfg.NotifyMailbox, Window: a.cfg.NotifyWindow, Logger: a.log})
	if err != nil {
		return nil, err
	}
	events.Register(notify)
	hooks.SetRunner(runner)
	events.Register(hooks)
	webhookAdmin := desk.NewWebhookAdmin(a.db, vault, a.cfg.WebhookAllowPrivate, hooks.EnqueueTest)
	authSvc := auth.NewService(auth.Options{DB: a.db, SessionTTL: a.cfg.SessionTTL, Logger: a.log,
		Limits: auth.Limits{HashConcurrency: a.cfg.SigninConcurrency}})
	dsk := desk.New(a.db, desk.WithEnqueuer(sender), desk.WithAssignOnReply(a.cfg.AssignOnReply))
	admin := desk.NewAdmin(a.db, vault, desk.Providers(configuredProviders(a.cfg)))
	admin.OAuth = oauthSvc // Test connection of a connected OAuth mailbox
	admin.Outbox = sender  // replies queued again by a switch to Graph
	in := ingest.New(a.db, ingest.Options{Logger: a.log, SupportAddresses: a.cfg.SupportAddresses, Metrics: ingest.NewMetrics(reg),
		Acknowledge: dsk.Acknowledge})
	pages, err := web.New(web.Options{DB: a.db, Auth: authSvc, Desk: dsk, Logger: a.log, OAuth: oauthSvc, Ingest: in,
		Banners: web.AuthBanners(a.db, oauthSvc, nil, a.log), Admin: admin, TrustedProxies: a.cfg.TrustedProxies, BaseURL: a.cfg.BaseURL.String(),
		SecureCookies: a.cfg.BaseURL.Scheme == "https", HSTS: a.cfg.BaseURL.Scheme == "https", Version: version,
		Webhooks: webhookAdmin})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", api.New(api.Options{DB: a.db, Auth: authSvc, Desk: dsk, Logger: a.log, Ingest: in,
		Admin: admin, BaseURL: a.cfg.BaseURL.String(), Webhooks: webhookAdmin}))
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	mux.Handle("GET /metrics", metricsHandler(a.cfg.MetricsToken, metrics))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := a.db.CheckSchema(ctx); err != nil {
			a.log.Error("health check failed", "err", err)
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/", pages)
	connectRate := float64(a.cfg.SyncConnectRate)
	if connectRate == 0 {
		connectRate = -1 // no bound
	}
	syncer, err := mailsync.New(mailsync.Options{DB: a.db, Ingest: in, OAuth: oauthSvc, Passwords: store.MailboxPasswords(a.db, vault), Logger: a.log,
		Registerer: reg, Owner: a.cfg.SyncOwner, GraphPoll: a.cfg.GraphPoll, ConnectRate: connectRate})
	if err != nil {
		return nil, err
	}
	return &server{app: a, handler: accessLog(a.log, stalledBodies(mux, bodyStall)), metrics: metrics, jobs: runner, ingest: in, syncer: syncer, oauth: oauthSvc,
		sender: sender, events: events, notify: notify}, nil
}

// metricsHandler serves next only to requests that send token as a bearer
// token (RFC 6750 2.1); without a token configured, to nobody: /metrics
// names every mailbox and its state, so it is never public by default.
// POSTDESK_METRICS_ADDR serves it on an address of its own instead.
func metricsHandler(token string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if token == "" || !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="postdesk metrics"`)
			msg := "/metrics needs its token: send Authorization: Bearer <POSTDESK_METRICS_TOKEN>"
			if token == "" {
				msg = "/metrics is not public: set POSTDESK_METRICS_TOKEN, or POSTDESK_METRICS_ADDR to serve it on its own address"
			}
			http.Error(w, msg, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refreshWait bounds how long shutdown waits for token refreshes in
// flight: the provider may already have rotated the refresh token, and only
// the answer carries the new one.
const refreshWait = 30 * time.Second

// run serves until ctx ends, then shuts down in two phases: stop taking
// new requests and jobs, wait for running ones up to a deadline, then cancel.
// Token refreshes are refused from the start of the shutdown, and those in
// flight are waited for (refreshWait) before the database closes.
func (s *server) run(ctx context.Context, ln net.Listener) error {
	log := s.app.log
	hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	if err := s.jobs.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	s.sender.Start()
	s.events.Start()
	s.notify.Start()
	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
	var ms *http.Server
	if addr := s.app.cfg.MetricsAddr; addr != "" {
		mln, err := net.Listen("tcp", addr)
		if err != nil {
			hs.Close()
			return fmt.Errorf("listen for metrics on %s: %w", addr, err)
		}
		mux := http.NewServeMux()
		metrics := s.metrics // its own address is its protection, with the token if one is set
		if s.app.cfg.MetricsToken != "" {
			metrics = metricsHandler(s.app.cfg.MetricsToken, s.metrics)
		}
		mux.Handle("GET /metrics", metrics)
		ms = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: hs.ErrorLog}
		go func() { errc <- ms.Serve(mln) }()
		log.Info("metrics on their own address", "listen", mln.Addr().String())
	}
	syncCtx, stopSync := context.WithCancel(context.WithoutCancel(ctx))
	syncDone := make(chan struct{})
	go func() {
		defer close(syncDone)
		s.syncer.Run(syncCtx)
	}()
	reindexDone := make(chan struct{})
	go func() {
		defer close(reindexDone)
		indexInBackground(syncCtx, s.app.db, log)
	}()
	log.Info("postdesk is running", "url", s.app.cfg.BaseURL.String(), "listen", ln.Addr().String(),
		"database", s.app.db.Dialect(), "data", s.app.cfg.DataDir, "version", version)
	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case serveErr = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	refreshesDone := make(chan error, 1)
	if s.oauth != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), refreshWait)
			defer cancel()
			refreshesDone <- s.oauth.Close(ctx)
		}()
	} else {
		refreshesDone <- nil
	}
	// Mail sync stops first: each session finishes the batch it is
	// committing, and its lease is released for another process.
	stopSync()
	for _, done := range []chan struct{}{syncDone, reindexDone} {
		select {
		case <-done:
		case <-shutdownCtx.Done():
		}
	}
	// Events and notifications stop queueing mail; the sender finishes the
	// message it is sending and takes no other; then the job engine stops.
	err := errors.Join(hs.Shutdown(shutdownCtx), s.events.Stop(shutdownCtx), s.notify.Stop(shutdownCtx),
		s.sender.Stop(shutdownCtx), s.jobs.Stop(shutdownCtx))
	if ms != nil {
		err = errors.Join(err, ms.Shutdown(shutdownCtx))
	}
	err = errors.Join(err, <-refreshesDone)
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return errors.Join(serveErr, err)
	}
	if err == nil {
		log.Info("stopped cleanly")
	}
	return err
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// accessLog logs one line per request (never query strings, which may hold search terms).
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		level := slog.LevelDebug
		if sw.status >= 500 {
			level = slog.LevelWarn
		}
		log.Log(r.Context(), level, "http request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
			"duration_ms", time.Since(start).Milliseconds())
	})
}
