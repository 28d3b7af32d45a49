package main

import (
	"context"
	"fmt"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

// runBlobs moves the blob files of the data folder into PostgreSQL (after
// an upgrade to schema 19), so processes on other hosts serve them too.
func runBlobs(ctx context.Context, e env, args []string) error {
	args, done, err := subcommand(e, "blobs", "move", args)
	if done {
		return err
	}
	a, _, done, err := start(ctx, e, "blobs", args, nil, nil)
	if done {
		return err
	}
	defer a.close()
	var last time.Time
	show := func(p store.MoveProgress) {
		fmt.Fprintf(e.stdout, "moved %d of %d blobs (%.1f MB)", p.Moved, p.Total, float64(p.Bytes)/(1<<20))
		if p.Missing > 0 {
			fmt.Fprintf(e.stdout, ", %d missing", p.Missing)
		}
		fmt.Fprintln(e.stdout)
	}
	p, err := a.db.MoveBlobs(ctx, func(p store.MoveProgress) {
		if time.Since(last) >= time.Second {
			show(p)
			last = time.Now()
		}
	})
	if err != nil {
		return fmt.Errorf("blobs move: %w (run it again to carry on)", err)
	}
	show(p)
	fmt.Fprintf(e.stdout, "removed %d files whose blob the database holds; %d files no row names were left in %s\n",
		p.Removed, p.Unnamed, a.cfg.DataDir)
	if p.Missing > 0 {
		return fmt.Errorf("blobs move: %d blobs named by messages are in neither the database nor the data folder", p.Missing)
	}
	return nil
}
