// Package jobs runs Postdesk's background work on River, whose queue lives
// in Postdesk's own database (River's SQLite driver, or its database/sql
// driver on PostgreSQL). A job inserted with InsertTx commits or rolls back
// with the rows it belongs to; several serve processes on one PostgreSQL
// share the queue with no other coordinator.
//
// Shutdown is two-phase: Stop stops fetching and waits for running jobs
// until the context's deadline, then cancels them; a cancelled job is
// handed back to the queue (retried later), never lost.
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/postdesk/postdesk/internal/store"
)

// DefaultPollInterval is how often an idle process looks for new jobs. On
// SQLite each look is a write statement that River's driver prepares
// again, the largest part of an idle process's CPU at River's own default
// of one second; River's scheduler makes scheduled jobs available every
// 5 s anyway.
const DefaultPollInterval = 5 * time.Second

// Runner owns the River client.
type Runner struct {
	client   *river.Client[*sql.Tx]
	log      *slog.Logger
	failures *prometheus.CounterVec
	cancel   func()
}

// Options configures a Runner.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer // for the job failure counter; may be nil
	// Register adds the application's workers; periodic jobs are returned.
	Register func(w *river.Workers) []*river.PeriodicJob
	// PollInterval is how often to look for new jobs (default
	// DefaultPollInterval). A job inserted with InsertTxSoon, or outside a
	// transaction, is fetched at once by this process; the poll finds the
	// others (another process's, or scheduled ones come due).
	PollInterval time.Duration
	// Outbox is the outbox sender: its send job and sweep are registered,
	// and it inserts its jobs through this Runner (nil: no sending here).
	Outbox *Sender
}

func driver(db *store.DB) riverdriver.Driver[*sql.Tx] {
	if db.Dialect() == "postgres" {
		return riverdatabasesql.New(db.SQL())
	}
	return pollingSQLite{riversqlite.New(db.SQL())}
}

// pollingSQLite is River's SQLite driver without its emulation of
// LISTEN/NOTIFY, which Postdesk does not use (the client polls, PollOnly):
// so an insert writes no notification row that nobody reads, and a job
// inserted outside a transaction makes this process fetch at once, as on
// PostgreSQL's database/sql driver.
type pollingSQLite struct{ *riversqlite.Driver }

func (pollingSQLite) SupportsListener() bool     { return false }
func (pollingSQLite) SupportsListenNotify() bool { return false }

// Migrate creates or upgrades River's tables.
func Migrate(ctx context.Context, db *store.DB, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := rivermigrate.New(driver(db), &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("job engine migrations: %w", err)
	}
	if db.Dialect() == "postgres" {
		// Serialise concurrent migrators, as the store does: two serve
		// processes starting at once on a new database both created
		// River's tables, and one exited on a duplicate key.
		c, err := db.SQL().Conn(ctx)
		if err != nil {
			return fmt.Errorf("migrate job engine: %w", err)
		}
		defer c.Close()
		if _, err := c.ExecContext(ctx, `SELECT pg_advisory_lock(7436153)`); err != nil {
			return fmt.Errorf("take the job engine's migration lock: %w", err)
		}
		defer c.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(7436153)`)
	}
	res, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return fmt.Errorf("migrate job engine: %w", err)
	}
	if n := len(res.Versions); n > 0 {
		log.Info("applied job engine migrations", "from", res.Versions[0].Version, "to", res.Versions[n-1].Version)
	}
	return nil
}

// New creates a Runner (not yet started).
func New(db *store.DB, opts Options) (*Runner, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	workers := river.NewWorkers()
	var periodic []*river.PeriodicJob
	if opts.Register != nil {
		periodic = opts.Register(workers)
	}
	if opts.Outbox != nil {
		periodic = append(periodic, opts.Outbox.register(workers)...)
	}
	r := &Runner{log: log, failures: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "postdesk_job_failures_total",
		Help: "Job attempts that failed, by job kind.",
	}, []string{"kind"})}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(r.failures); err != nil {
			return nil, fmt.Errorf("register job metrics: %w", err)
		}
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	river.AddWorker(workers, &nudgeWorker{})
	client, err := river.NewClient(driver(db), &river.Config{
		Logger:            log.With("component", "jobs"),
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 4}},
		Workers:           workers,
		PeriodicJobs:      periodic,
		FetchPollInterval: opts.PollInterval,
		PollOnly:          true,
		JobTimeout:        10 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("create job client: %w", err)
	}
	r.client = client
	if opts.Outbox != nil {
		opts.Outbox.setRunner(r)
	}
	return r, nil
}

// Client is the River client, for inserting jobs.
func (r *Runner) Client() *river.Client[*sql.Tx] { return r.client }

// InsertTx enqueues a job inside a store transaction: it runs only if tx commits.
func (r *Runner) InsertTx(ctx context.Context, tx *store.Tx, args river.JobArgs, opts *river.InsertOpts) error {
	if _, err := r.client.InsertTx(ctx, tx.SQLTx(), args, opts); err != nil {
		return fmt.Errorf("enqueue %s: %w", args.Kind(), err)
	}
	return nil
}

// InsertTxSoon is InsertTx for a job that should start as soon as tx
// commits, not at the next poll: after the commit this process fetches
// jobs at once (River's SQLite and database/sql drivers have no
// LISTEN/NOTIFY; a job inserted outside a transaction triggers the fetch,
// so the trigger is a small job of that kind, at most one waiting).
func (r *Runner) InsertTxSoon(ctx context.Context, tx *store.Tx, args river.JobArgs, opts *river.InsertOpts) error {
	if err := r.InsertTx(ctx, tx, args, opts); err != nil {
		return err
	}
	tx.AfterCommit(r.nudge)
	return nil
}

func (r *Runner) nudge() {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := r.client.Insert(ctx, nudgeArgs{}, nil); err != nil && ctx.Err() == nil {
			r.log.Warn("start new jobs at once (they start at the next poll instead)", "err", err)
		}
	}()
}

// nudgeArgs is the job whose insertion makes this process fetch jobs now
// (even when it is skipped as a duplicate); working it does nothing. At
// most one waits or runs at a time.
type nudgeArgs struct{}

func (nudgeArgs) Kind() string { return "fetch_now" }

func (nudgeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateScheduled}}}
}

type nudgeWorker struct {
	river.WorkerDefaults[nudgeArgs]
}

func (*nudgeWorker) Work(context.Context, *river.Job[nudgeArgs]) error { return nil }

// Start starts working jobs.
func (r *Runner) Start(ctx context.Context) error {
	events, cancel := r.client.Subscribe(river.EventKindJobFailed)
	r.cancel = cancel
	go func() {
		for ev := range events {
			r.failures.WithLabelValues(ev.Job.Kind).Inc()
			var last string
			if n := len(ev.Job.Errors); n > 0 {
				last = ev.Job.Errors[n-1].Error
			}
			r.log.Warn("job failed", "job_id", ev.Job.ID, "kind", ev.Job.Kind, "attempt", ev.Job.Attempt, "err", last)
		}
	}()
	if err := r.client.Start(ctx); err != nil {
		return fmt.Errorf("start jobs: %w", err)
	}
	return nil
}

// Stop lets running jobs finish until ctx is done, then cancels them (they
// are retried later).
func (r *Runner) Stop(ctx context.Context) error {
	err := r.client.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		r.log.Warn("jobs still running at shutdown deadline: cancelling them; they will be retried")
		hard, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err = r.client.StopAndCancel(hard)
	}
	if r.cancel != nil {
		r.cancel()
	}
	return err
}
