package mailsync

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postdesk/postdesk/internal/imapsync"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

// Syncer defaults.
const (
	DefaultRound    = 5 * time.Second
	DefaultLeaseTTL = 30 * time.Second
)

// Options configures a Syncer.
type Options struct {
	DB     *store.DB
	Ingest *ingest.Ingester
	OAuth  *oauth.Service // nil: only password mailboxes are synced
	// Passwords opens password mailboxes' passwords (store.MailboxPasswords);
	// nil: password mailboxes fail to sign in.
	Passwords store.PasswordFunc
	Logger    *slog.Logger
	// Owner names this process in leases (default host-pid-random).
	Owner string
	// Round is how often mailboxes are (re)considered; LeaseTTL how long a
	// lease lasts without renewal.
	Round, LeaseTTL time.Duration
	// Transports build the mailboxes' fetchers, by name (default: IMAP
	// alone, with Tune).
	Transports map[string]Transport
	// Tune adjusts each IMAP session's configuration (tests: TLS roots,
	// timings) when Transports is not given.
	Tune func(cfg *imapsync.Config)
	// GraphPoll is how often a Graph mailbox's folders are polled when
	// Transports is not given (default DefaultGraphPoll).
	GraphPoll  time.Duration
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Syncer runs the mail sync of the mailboxes this process holds leases on.
type Syncer struct {
	opt     Options
	log     *slog.Logger
	mu      sync.Mutex
	running map[int64]context.CancelFunc
	// settings is the settings version each running session started with:
	// a session restarts when an admin changes its mailbox's settings.
	settings map[int64]time.Time
	wg       sync.WaitGroup
	metrics  *syncMetrics
}

type syncMetrics struct {
	connected *prometheus.GaugeVec
	fetched   *prometheus.CounterVec
	errors    *prometheus.CounterVec
}

// New returns a Syncer; Run starts it.
func New(opt Options) (*Syncer, error) {
	if opt.DB == nil || opt.Ingest == nil {
		return nil, errors.New("syncer: DB and Ingest are required")
	}
	if opt.Owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		rand.Read(b)
		opt.Owner = host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b)
	}
	if opt.Round <= 0 {
		opt.Round = DefaultRound
	}
	if opt.LeaseTTL <= 0 {
		opt.LeaseTTL = DefaultLeaseTTL
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Transports == nil {
		opt.Transports = map[string]Transport{TransportIMAP: IMAP{Tune: opt.Tune}, TransportGraph: Graph{Poll: opt.GraphPoll}}
	}
	s := &Syncer{opt: opt, log: opt.Logger.With("component", "sync", "owner", opt.Owner), running: map[int64]context.CancelFunc{}, settings: map[int64]time.Time{},
		metrics: &syncMetrics{
			connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "postdesk_mailbox_sync_connected",
				Help: "1 while this process holds a live IMAP session for the mailbox."}, []string{"mailbox"}),
			fetched: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "postdesk_mailbox_messages_fetched_total",
				Help: "Messages fetched over IMAP and committed, by mailbox."}, []string{"mailbox"}),
			errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "postdesk_mailbox_sync_errors_total",
				Help: "Failed IMAP sessions, by mailbox (each is retried with back-off)."}, []string{"mailbox"}),
		}}
	if opt.Registerer != nil {
		for _, c := range []prometheus.Collector{s.metrics.connected, s.metrics.fetched, s.metrics.errors} {
			if err := opt.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register sync metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Owner is this process's name in leases.
func (s *Syncer) Owner() string { return s.opt.Owner }

// Run syncs until ctx ends, then stops every session and releases its
// leases (so another process can take over at once).
func (s *Syncer) Run(ctx context.Context) error {
	t := time.NewTicker(s.opt.Round)
	defer t.Stop()
	for {
		if err := s.round(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("sync round failed", "err", err)
		}
		select {
		case <-ctx.Done():
			s.stopAll()
			bye, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = s.opt.DB.Write(bye, func(tx *store.Tx) error { return tx.RemoveHeartbeat(bye, s.opt.Owner) })
			cancel()
			return nil
		case <-t.C:
		}
	}
}

// Running lists the mailboxes this process is syncing now.
func (s *Syncer) Running() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, 0, len(s.running))
	for id := range s.running {
		ids = append(ids, id)
	}
	return ids
}

func (s *Syncer) round(ctx context.Context) error {
	ids, err := s.opt.DB.SyncedMailboxIDs(ctx)
	if err != nil {
		return err
	}
	var usable []int64
	want := map[int64]bool{}
	for _, id := range ids {
		u, err := s.usability(ctx, id)
		if err != nil {
			s.log.Warn("check mailbox", "mailbox_id", id, "err", err)
			continue
		}
		if !u.OK() {
			s.stop(id, u.Words())
			continue
		}
		want[id] = true
		usable = append(usable, id)
	}
	s.mu.Lock()
	var gone, mine []int64
	for id := range s.running {
		if !want[id] {
			gone = append(gone, id)
		} else {
			mine = append(mine, id)
		}
	}
	s.mu.Unlock()
	for _, id := range gone {
		s.stop(id, "mailbox removed, disabled or not usable")
	}

	// A fair share: each live process syncs at most ceil(mailboxes /
	// processes); one holding more (another process just joined) lets the
	// extra ones go, and the newcomer takes them over.
	now := s.opt.Now()
	var live int
	err = s.opt.DB.Write(ctx, func(tx *store.Tx) error {
		var err error
		live, err = tx.Heartbeat(ctx, s.opt.Owner, now, now.Add(-s.opt.LeaseTTL))
		return err
	})
	if err != nil {
		return err
	}
	share := (len(usable) + max(live, 1) - 1) / max(live, 1)
	slices.Sort(mine)
	for len(mine) > share {
		id := mine[len(mine)-1]
		mine = mine[:len(mine)-1]
		s.stop(id, fmt.Sprintf("fair share: %d processes for %d mailboxes", live, len(usable)))
	}
	holding := map[int64]bool{}
	for _, id := range mine {
		holding[id] = true
	}
	for _, id := range usable {
		if !holding[id] && len(holding) >= share {
			continue
		}
		var held bool
		err = s.opt.DB.Write(ctx, func(tx *store.Tx) error {
			var err error
			held, err = tx.AcquireLease(ctx, id, s.opt.Owner, now, now.Add(s.opt.LeaseTTL))
			return err
		})
		if err != nil {
			s.log.Warn("renew lease", "mailbox_id", id, "err", err)
			continue
		}
		if !held {
			s.stop(id, "another process holds the lease")
			delete(holding, id)
			continue
		}
		holding[id] = true
		if srv, err := s.opt.DB.MailboxServer(ctx, id); err == nil {
			s.mu.Lock()
			started, running := s.settings[id]
			s.mu.Unlock()
			if running && !srv.UpdatedAt.Equal(started) {
				s.stop(id, "settings changed")
				continue // restarted with the new settings next round
			}
		}
		s.start(ctx, id)
	}
	return nil
}

// usability is whether a mailbox can be fetched now (store.MailboxAuth
// decides).
func (s *Syncer) usability(ctx context.Context, id int64) (store.Usability, error) {
	a, err := s.opt.DB.MailboxAuth(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.UnusableNoSignIn, nil
	}
	if err != nil {
		return "", err
	}
	return a.Usability(s.opt.OAuth != nil), nil
}

func (s *Syncer) start(ctx context.Context, id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.running[id]; ok {
		return
	}
	mctx, cancel := context.WithCancel(ctx)
	s.running[id] = cancel
	if srv, err := s.opt.DB.MailboxServer(ctx, id); err == nil {
		s.settings[id] = srv.UpdatedAt
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("mailbox sync panicked", "mailbox_id", id, "panic", p)
			}
			s.mu.Lock()
			delete(s.running, id)
			delete(s.settings, id)
			s.mu.Unlock()
			release, cancelRelease := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancelRelease()
			_ = s.opt.DB.Write(release, func(tx *store.Tx) error { return tx.ReleaseLease(release, id, s.opt.Owner) })
		}()
		s.runMailbox(mctx, id)
	}()
}

func (s *Syncer) stop(id int64, why string) {
	s.mu.Lock()
	cancel, ok := s.running[id]
	s.mu.Unlock()
	if ok {
		s.log.Info("stopping mailbox sync", "mailbox_id", id, "why", why)
		cancel()
	}
}

func (s *Syncer) stopAll() {
	s.mu.Lock()
	for _, cancel := range s.running {
		cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// runMailbox runs one mailbox's fetcher until ctx ends or its
// authorization fails for good.
func (s *Syncer) runMailbox(ctx context.Context, id int64) {
	log := s.log.With("mailbox_id", id)
	mb, err := s.opt.DB.Mailbox(ctx, id)
	if err != nil {
		log.Error("load mailbox", "err", err)
		return
	}
	fetcher, transport, err := s.fetcher(ctx, mb, log)
	if err != nil {
		s.status(ctx, id, store.SyncError, err)
		log.Error("mailbox settings", "err", err)
		return
	}
	st := &syncStore{db: s.opt.DB, ingest: s.opt.Ingest, mailbox: mb, now: s.opt.Now, ahead: transport.Ahead,
		onBatch: func(results []ingest.Result) {
			s.metrics.fetched.WithLabelValues(mb.Address).Add(float64(len(results)))
		}}
	log.Info("mailbox sync starting", "address", mb.Address)
	err = fetcher.Run(ctx, st)
	st.close()
	s.metrics.connected.WithLabelValues(mb.Address).Set(0)
	if ctx.Err() != nil {
		s.status(context.WithoutCancel(ctx), id, store.SyncStopped, nil)
		return
	}
	var refused *RefusedError
	switch {
	case errors.Is(err, ErrPermanent):
		log.Warn("mailbox authorization failed for good", "err", err)
	case errors.As(err, &refused):
		log.Warn("mail server refused the credentials", "mechanism", refused.Mechanism, "refreshed", refused.Refreshed)
		s.refused(ctx, id, refused)
	case err != nil:
		log.Error("mailbox sync ended", "err", err)
	}
	s.status(ctx, id, store.SyncError, err)
}

// refused records a refusal by the mail server as the mailbox's state.
func (s *Syncer) refused(ctx context.Context, id int64, e *RefusedError) {
	var detail string
	if e.Detail != "" {
		detail = "server said: " + e.Detail
	}
	a, err := s.opt.DB.MailboxAuth(ctx, id)
	if u := a.Usability(s.opt.OAuth != nil); err == nil && (u == store.UnusableNeedsReauth || u == store.UnusableProviderFault) {
		return // the provider's refusal, with its reason, is already recorded
	}
	if err == nil && a.Kind == store.AuthOAuth && s.opt.OAuth != nil {
		err = s.opt.OAuth.ServerRefused(ctx, id, detail)
	} else if err == nil {
		err = s.opt.DB.Write(ctx, func(tx *store.Tx) error {
			now := s.opt.Now().UTC()
			// Each surface says how to give the new password (the code
			// tells it); fetching resumes where it stopped.
			msg := "The mail server refused the mailbox's password."
			if detail != "" {
				msg = "The mail server refused the mailbox's password (" + detail + ")."
			}
			if err := tx.SetAuthState(ctx, id, store.AuthNeedsReauth, store.CodePasswordRefused, msg, now); err != nil {
				return err
			}
			return tx.AddNotice(ctx, &store.Notice{MailboxID: id, Kind: string(store.AuthNeedsReauth), Message: a.Address + ": " + msg, CreatedAt: now})
		})
	}
	if err != nil {
		s.log.Error("record refused credentials", "mailbox_id", id, "err", err)
	}
}

// fetcher builds a mailbox's Fetcher with the transport its settings
// choose, giving it the credentials (never unsealed here).
func (s *Syncer) fetcher(ctx context.Context, mb store.Mailbox, log *slog.Logger) (Fetcher, Transport, error) {
	srv, err := s.opt.DB.MailboxServer(ctx, mb.ID)
	if err != nil {
		return nil, nil, err
	}
	name := transportFor(srv)
	transport, ok := s.opt.Transports[name]
	if !ok {
		return nil, nil, fmt.Errorf("no %s transport in this process", name)
	}
	sess := Session{Mailbox: mb, Server: srv, Username: mb.Address, Logger: log,
		Events: func(ev Event) { s.event(ctx, mb, ev) }}
	switch {
	case name == TransportGraph:
		if s.opt.OAuth == nil {
			return nil, nil, errors.New("no OAuth provider is configured")
		}
		if sess.Graph, err = s.opt.OAuth.GraphClient(ctx, mb.ID); err != nil {
			return nil, nil, err
		}
		f, err := transport.Fetcher(sess)
		return f, transport, err
	}
	switch srv.AuthMethod {
	case string(imapsync.AuthXOAuth2), string(imapsync.AuthOAuthBearer):
		if s.opt.OAuth == nil {
			return nil, nil, errors.New("no OAuth provider is configured")
		}
		// A bearer token goes only to a host its provider trusts. desk
		// refuses any other when an admin sets one; this holds too when
		// the configuration changed since, or a row was written otherwise:
		// the session does not even connect, and each token request
		// checks the host it is for.
		if err := s.opt.OAuth.CheckHost(ctx, mb.ID, srv.IMAPHost); err != nil {
			return nil, nil, err
		}
		sess.Token = permanentOn(s.opt.OAuth.HostTokenFunc(mb.ID, srv.IMAPHost, false))
		sess.RefreshToken = permanentOn(s.opt.OAuth.HostTokenFunc(mb.ID, srv.IMAPHost, true))
	default:
		a, err := s.opt.DB.MailboxAuth(ctx, mb.ID)
		if err != nil {
			return nil, nil, err
		}
		if s.opt.Passwords == nil {
			return nil, nil, store.ErrNoSecretKey
		}
		if srv.Username != "" {
			sess.Username = srv.Username
		} else if a.Account != "" {
			sess.Username = a.Account
		}
		passwords, id := s.opt.Passwords, mb.ID
		sess.Password = func(ctx context.Context) (string, error) {
			pw, err := passwords(ctx, id)
			if err != nil && !s.opt.DB.Transient(err) && ctx.Err() == nil {
				return "", fmt.Errorf("%w: %w", ErrPermanent, err) // a wrong key stays wrong
			}
			return pw, err
		}
	}
	f, err := transport.Fetcher(sess)
	return f, transport, err
}

// permanentOn marks the provider's final refusals as permanent, so the
// session stops instead of retrying (the oauth service has already
// recorded the mailbox's state).
func permanentOn(f func(context.Context) (string, error)) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		tok, err := f(ctx)
		if err != nil && oauthFinal(err) {
			return "", fmt.Errorf("%w: %w", ErrPermanent, err)
		}
		return tok, err
	}
}

// oauthFinal reports whether err is the provider's (or the settings')
// final refusal of a mailbox's token: retrying cannot help.
func oauthFinal(err error) bool {
	return errors.Is(err, oauth.ErrNeedsReauth) || errors.Is(err, oauth.ErrProviderFault) || errors.Is(err, oauth.ErrNotConnected) ||
		errors.Is(err, oauth.ErrHostNotTrusted) || errors.Is(err, oauth.ErrNoGraph)
}

func (s *Syncer) event(ctx context.Context, mb store.Mailbox, ev Event) {
	switch ev.Kind {
	case EventConnected:
		s.metrics.connected.WithLabelValues(mb.Address).Set(1)
		s.status(ctx, mb.ID, store.SyncConnected, nil)
	case EventIdling:
		s.status(ctx, mb.ID, store.SyncIdling, nil)
	case EventSynced:
		s.status(ctx, mb.ID, store.SyncSynced, nil)
	case EventError, EventAuthFailed:
		s.metrics.connected.WithLabelValues(mb.Address).Set(0)
		s.metrics.errors.WithLabelValues(mb.Address).Inc()
		s.status(ctx, mb.ID, store.SyncError, ev.Err)
	}
}

// status records a mailbox's sync state for the UI.
func (s *Syncer) status(ctx context.Context, id int64, state store.SyncState, cause error) {
	err := s.opt.DB.Write(ctx, func(tx *store.Tx) error {
		st, err := tx.SyncStatus(ctx, id)
		if err != nil {
			return err
		}
		now := s.opt.Now().UTC()
		st.State, st.Owner, st.UpdatedAt = state, s.opt.Owner, now
		if cause != nil {
			st.LastError, st.LastErrorAt = cause.Error(), now
		} else if state.UpToDate() {
			st.LastSuccessAt = now
		}
		return tx.PutSyncStatus(ctx, st)
	})
	if err != nil && ctx.Err() == nil {
		s.log.Warn("record sync status", "mailbox_id", id, "err", err)
	}
}
