// Command postdesk is Postdesk's one binary: the server, its maintenance
// commands and the demo. Each subcommand is a row in the table below.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// env is what a command may touch of the outside world, so tests can run
// commands in-process.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

type command struct {
	name    string
	usage   string
	summary string
	run     func(ctx context.Context, e env, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "serve [flags]", "run the web server, the API and background jobs", runServe},
		{"demo", "demo [flags]", "run Postdesk with a built-in mail server, a stand-in Microsoft sign-in and sample mail", runDemo},
		{"migrate", "migrate [flags]", "create or upgrade the database schema", runMigrate},
		{"import", "import --mailbox ADDRESS [flags] FILE|DIR...", "ingest .eml files or mbox files into a mailbox", runImport},
		{"inspect", "inspect [--mailbox ADDRESS] [--agent EMAIL]... [--text] FILE.eml", "explain what Postdesk would do with an email, changing nothing", runInspect},
		{"mailbox", "mailbox add|update|list|show|remove [flags] [ADDRESS]", "manage support mailboxes: server settings, sign-in, folders", runMailbox},
		{"user", "user add|list|role|disable|enable|reset|lockouts|unlock [flags]", "add, list and manage agents and admins (a password from stdin, a generated one or an invitation link); sign-in lockouts", runUser},
		{"apikey", "apikey create|list|revoke [flags]", "create an API key for a user (shown once, optionally expiring), list and revoke keys", runAPIKey},
		{"fakeidp", "fakeidp [--addr A] [--account E[:PW]]... [--app ID:SECRET:REDIRECT]... [--graph-mailbox E]...", "run the stand-in Microsoft sign-in, with a stand-in Microsoft Graph for mail at /graph/v1.0 (for the demo and tests; never for production)", runFakeIdP},
		{"reindex", "reindex [--all] [flags]", "build the search index of tickets from before it (resumable; serve also does it in the background)", runReindex},
		{"blobs", "blobs move [flags]", "move the raw messages and attachments kept as files in the data folder into PostgreSQL (resumable)", runBlobs},
		{"secrets", "secrets rotate [flags]", "re-seal every stored token and password under a new key", runSecrets},
		{"version", "version", "print the version", runVersion},
	}
}

// errUsage is returned after a usage message was printed.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	if err := run(ctx, e, os.Args[1:]); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "postdesk:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(e.stderr)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	usage(e.stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Postdesk turns support mailboxes into helpdesk tickets.\n\nUsage: postdesk COMMAND [flags]\n\nCommands:")
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'postdesk COMMAND --help' for a command's flags. Every flag can also be set with a POSTDESK_* variable.")
}

// newFlags returns a flag set for a command, printing its usage on --help.
func newFlags(e env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	for _, c := range commands() {
		if c.name == name {
			fs.Usage = func() {
				fmt.Fprintf(e.stderr, "Usage: postdesk %s\n\n%s.\n\nFlags:\n", c.usage, strings.ToUpper(c.summary[:1])+c.summary[1:])
				fs.PrintDefaults()
			}
		}
	}
	return fs
}

// parse parses flags; --help prints usage and ends the command successfully.
// A flag after an argument is refused: the flag package stops at the first
// argument, so "serve typo --database-url ..." would run on the default
// database with every later flag ignored.
func parse(fs *flag.FlagSet, args []string) (done bool, err error) {
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return true, nil
	}
	if err != nil {
		return true, errUsage
	}
	if slices.Contains(args, "--") {
		return false, nil // what follows is arguments, even if it starts with -
	}
	for _, a := range fs.Args() {
		if len(a) > 1 && a[0] == '-' {
			return true, fmt.Errorf("%s: the flag %s comes after the argument %q, so it would be ignored: put flags before arguments (see postdesk %s --help)",
				fs.Name(), a, fs.Arg(0), fs.Name())
		}
	}
	return false, nil
}

// noArgs refuses arguments for a command that takes none.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q: this command takes only flags (see postdesk %s --help)", fs.Name(), fs.Arg(0), fs.Name())
	}
	return nil
}

func runVersion(ctx context.Context, e env, args []string) error {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintln(e.stderr, "Usage: postdesk version\n\nPrint the version.")
		return nil
	}
	if len(args) > 0 {
		return fmt.Errorf("version: unexpected argument %q: it takes none", args[0])
	}
	fmt.Fprintln(e.stdout, "postdesk", version)
	return nil
}
