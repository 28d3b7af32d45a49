package jobs

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"github.com/postdesk/postdesk/internal/store"
)

// CleanupArgs removes expired sign-in sessions.
type CleanupArgs struct{}

// Kind names the job.
func (CleanupArgs) Kind() string { return "cleanup_sessions" }

// CleanupWorker works CleanupArgs.
type CleanupWorker struct {
	river.WorkerDefaults[CleanupArgs]
	DB *store.DB
}

// Work deletes sessions that have expired.
func (w *CleanupWorker) Work(ctx context.Context, job *river.Job[CleanupArgs]) error {
	return w.DB.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.DeleteExpiredSessions(ctx, time.Now())
		return err
	})
}

// Core registers the jobs every Postdesk process runs.
func Core(db *store.DB) func(w *river.Workers) []*river.PeriodicJob {
	return func(w *river.Workers) []*river.PeriodicJob {
		river.AddWorker(w, &CleanupWorker{DB: db})
		return []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
				func() (river.JobArgs, *river.InsertOpts) { return CleanupArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true}),
		}
	}
}
