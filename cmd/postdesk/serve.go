package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
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
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/web"
)

func runServe(ctx context.Context, e env, args []string) error {
	a, _, done, err := start(ctx, e, "serve", args, nil, nil)
	if done {
		return err
	}
	defer a.close()
	cfg := a.cfg
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if cfg.SyncOwner == "" {
		// Stable across restarts (a restarted process renews its own leases
		// at once instead of waiting for them to expire) and unique among
		// running processes (no two can listen on one address).
		host, _ := os.Hostname()
		cfg.SyncOwner = host + "/" + ln.Addr().String()
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
func newOAuth(a *app, vault *store.Vault) (*oauth.Service, error) {
	providers := configuredProviders(a.cfg)
	if len(providers) == 0 {
		a.log.Info("no OAuth provider configured: set POSTDESK_MICROSOFT_CLIENT_ID (or POSTDESK_GOOGLE_CLIENT_ID) to connect mailboxes")
		return nil, nil
	}
	return oauth.New(oauth.Config{DB: a.db, Vault: vault, Providers: providers, Logger: a.log,
		RedirectURL: a.cfg.BaseURL.String() + "/oauth/callback"})
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
	return providers
}

// server is a running Postdesk: web, API, metrics and jobs.
type server struct {
	app     *app
	handler http.Handler
	jobs    *jobs.Runner
	ingest  *ingest.Ingester
	syncer  *jobs.Syncer
}

func newServer(a *app) (*server, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	vault, err := loadVault(a.cfg)
	if err != nil {
		return nil, err
	}
	oauthSvc, err := newOAuth(a, vault)
	if err != nil {
		return nil, err
	}
	regs := jobs.All(jobs.Core(a.db))
	if oauthSvc != nil {
		reg.MustRegister(oauthSvc.Collector())
		regs = jobs.All(jobs.Core(a.db), jobs.Auth(oauthSvc))
	}
	runner, err := jobs.New(a.db, jobs.Options{Logger: a.log, Registerer: reg, Register: regs})
	if err != nil {
		return nil, err
	}
	authSvc := auth.NewService(auth.Options{DB: a.db, SessionTTL: a.cfg.SessionTTL, Logger: a.log,
		Limits: auth.Limits{HashConcurrency: a.cfg.SigninConcurrency}})
	dsk := desk.New(a.db)
	pages, err := web.New(web.Options{DB: a.db, Auth: authSvc, Desk: dsk, Logger: a.log, OAuth: oauthSvc,
		Banners:       web.AuthBanners(a.db, oauthSvc, nil, a.log),
		SecureCookies: a.cfg.BaseURL.Scheme == "https", Version: version, TrustedProxies: a.cfg.TrustedProxies})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", api.New(api.Options{DB: a.db, Auth: authSvc, Desk: dsk, Logger: a.log,
		Admin: desk.NewAdmin(a.db, vault, desk.Providers(configuredProviders(a.cfg)))}))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
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
	in := ingest.New(a.db, ingest.Options{Logger: a.log, SupportAddresses: a.cfg.SupportAddresses, Metrics: ingest.NewMetrics(reg)})
	syncer, err := jobs.NewSyncer(jobs.SyncOptions{DB: a.db, Ingest: in, OAuth: oauthSvc, Vault: vault, Logger: a.log,
		Registerer: reg, Owner: a.cfg.SyncOwner})
	if err != nil {
		return nil, err
	}
	return &server{app: a, handler: accessLog(a.log, mux), jobs: runner, ingest: in, syncer: syncer}, nil
}

// run serves until ctx ends, then shuts down in two phases: stop taking
// new requests and jobs, wait for running ones up to a deadline, then cancel.
func (s *server) run(ctx context.Context, ln net.Listener) error {
	log := s.app.log
	hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	if err := s.jobs.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	syncCtx, stopSync := context.WithCancel(context.WithoutCancel(ctx))
	syncDone := make(chan struct{})
	go func() {
		defer close(syncDone)
		s.syncer.Run(syncCtx)
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
	// Mail sync stops first: each session finishes the batch it is
	// committing, and its lease is released for another process.
	stopSync()
	select {
	case <-syncDone:
	case <-shutdownCtx.Done():
	}
	err := errors.Join(hs.Shutdown(shutdownCtx), s.jobs.Stop(shutdownCtx))
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
