package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/postdesk/postdesk/internal/config"
	"github.com/postdesk/postdesk/internal/jobs"
	"github.com/postdesk/postdesk/internal/store"
)

// app is what most commands need: the configuration, a logger and the
// migrated database.
type app struct {
	cfg *config.Config
	log *slog.Logger
	db  *store.DB
}

// withConfig declares the configuration flags on fs; call the returned
// function after parsing.
func withConfig(e env, fs *flag.FlagSet) func() (*config.Config, error) {
	return config.Flags(fs, e.getenv)
}

// open loads the database and brings its schema (and the job engine's) up
// to date. A schema newer than this binary is refused.
func open(ctx context.Context, e env, cfg *config.Config) (*app, error) {
	log := cfg.Logger(e.stderr)
	db, err := store.Open(ctx, store.Config{DataDir: cfg.DataDir, DatabaseURL: cfg.DatabaseURL, Logger: log})
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := jobs.Migrate(ctx, db, log); err != nil {
		db.Close()
		return nil, err
	}
	return &app{cfg: cfg, log: log, db: db}, nil
}

func (a *app) close() { a.db.Close() }

// start is how a command that needs the database begins: it declares the
// configuration flags and the command's own (declare), parses args, runs
// check on the parsed flags, validates the configuration and opens the
// migrated database. With done set the command ends with err (nil after
// --help); otherwise the caller closes the app.
//
// start works on an existing database: on SQLite, a data folder without
// one (a mistyped --data) is refused rather than given a new, empty
// database that makes the command say "no mailboxes yet". Commands that
// set Postdesk up (serve, migrate, import, mailbox add, user add) use
// startNew, which creates it.
// A command without check takes no arguments.
func start(ctx context.Context, e env, name string, args []string, declare func(fs *flag.FlagSet), check func(fs *flag.FlagSet) error) (a *app, fs *flag.FlagSet, done bool, err error) {
	if check == nil {
		check = noArgs
	}
	return begin(ctx, e, name, args, declare, check, false)
}

// startNew is start for a command that may create the database.
func startNew(ctx context.Context, e env, name string, args []string, declare func(fs *flag.FlagSet), check func(fs *flag.FlagSet) error) (a *app, fs *flag.FlagSet, done bool, err error) {
	if check == nil {
		check = noArgs
	}
	return begin(ctx, e, name, args, declare, check, true)
}

func begin(ctx context.Context, e env, name string, args []string, declare func(fs *flag.FlagSet), check func(fs *flag.FlagSet) error, create bool) (a *app, fs *flag.FlagSet, done bool, err error) {
	fs = newFlags(e, name)
	load := withConfig(e, fs)
	if declare != nil {
		declare(fs)
	}
	if done, err := parse(fs, args); done {
		return nil, fs, true, err
	}
	if check != nil {
		if err := check(fs); err != nil {
			return nil, fs, true, err
		}
	}
	cfg, err := load()
	if err != nil {
		return nil, fs, true, err
	}
	if !create && cfg.DatabaseURL == "" {
		path := filepath.Join(cfg.DataDir, "postdesk.db")
		if _, err := os.Stat(path); errors.Is(err, iofs.ErrNotExist) {
			return nil, fs, true, fmt.Errorf("%s: there is no Postdesk database in the data folder %s (--data, POSTDESK_DATA): check the path, or set Postdesk up there first (postdesk migrate, serve or mailbox add)", name, cfg.DataDir)
		}
	}
	a, err = open(ctx, e, cfg)
	if err != nil {
		return nil, fs, true, err
	}
	return a, fs, false, nil
}

// subcommand checks that args name the command's one subcommand (user add,
// apikey create, secrets rotate) and returns the rest; --help prints usage.
func subcommand(e env, name, want string, args []string) (rest []string, done bool, err error) {
	if len(args) > 0 && args[0] == want {
		return args[1:], false, nil
	}
	newFlags(e, name).Usage()
	if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
		return nil, true, nil
	}
	return nil, true, fmt.Errorf("%s: the only subcommand is '%s'", name, want)
}

// verb is one subcommand of a command with several (user add|lockouts|unlock).
type verb struct {
	name string
	run  func(ctx context.Context, e env, args []string) error
}

// dispatch runs the subcommand args name; with none, an unknown one or
// --help it prints the command's usage (--help ends successfully).
func dispatch(ctx context.Context, e env, name string, args []string, verbs ...verb) error {
	var names []string
	for _, v := range verbs {
		if len(args) > 0 && args[0] == v.name {
			return v.run(ctx, e, args[1:])
		}
		names = append(names, v.name)
	}
	newFlags(e, name).Usage()
	if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
		return nil
	}
	return fmt.Errorf("%s: say %s", name, strings.Join(names, ", "))
}

func runMigrate(ctx context.Context, e env, args []string) error {
	a, _, done, err := startNew(ctx, e, "migrate", args, nil, nil)
	if done {
		return err
	}
	defer a.close()
	v, err := a.db.SchemaVersion()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "database (%s) is at schema version %d\n", a.db.Dialect(), v)
	return nil
}
