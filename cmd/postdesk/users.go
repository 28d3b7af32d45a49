package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/store"
)

func runUser(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] != "add" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			newFlags(e, "user").Usage()
			return nil
		}
		newFlags(e, "user").Usage()
		return errors.New("user: the only subcommand is 'add'")
	}
	fs := newFlags(e, "user")
	load := withConfig(e, fs)
	email := fs.String("email", "", "the user's email address (required)")
	name := fs.String("name", "", "the user's display name")
	role := fs.String("role", store.RoleAgent, "admin or agent")
	if done, err := parse(fs, args[1:]); done {
		return err
	}
	if *email == "" {
		return errors.New("user add: --email is required")
	}
	if *role != store.RoleAdmin && *role != store.RoleAgent {
		return fmt.Errorf("user add: --role must be admin or agent, not %q", *role)
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	password, err := readPassword(e)
	if err != nil {
		return err
	}
	a, err := open(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer a.close()
	u, used, err := auth.CreateUser(ctx, a.db, *email, *name, *role, password)
	if err != nil {
		return fmt.Errorf("user add: %w", err)
	}
	fmt.Fprintf(e.stdout, "added %s %s (id %d)\n", u.Role, u.Email, u.ID)
	if password == "" {
		fmt.Fprintf(e.stdout, "password: %s\n(shown once: store it now)\n", used)
	}
	return nil
}

// readPassword reads a password from stdin when stdin is not a terminal;
// empty means "generate one".
func readPassword(e env) (string, error) {
	if f, ok := e.stdin.(*os.File); ok {
		if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice != 0 {
			return "", nil
		}
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", nil
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw != "" && len(pw) < 8 {
		return "", errors.New("user add: the password from stdin must be at least 8 characters")
	}
	return pw, nil
}

func runAPIKey(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] != "create" {
		newFlags(e, "apikey").Usage()
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			return nil
		}
		return errors.New("apikey: the only subcommand is 'create'")
	}
	fs := newFlags(e, "apikey")
	load := withConfig(e, fs)
	user := fs.String("user", "", "email of the user the key acts as (required)")
	name := fs.String("name", "", "a label for the key")
	if done, err := parse(fs, args[1:]); done {
		return err
	}
	if *user == "" {
		return errors.New("apikey create: --user is required")
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	a, err := open(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer a.close()
	u, err := a.db.UserByEmail(ctx, *user)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("apikey create: no user %s (add one with 'postdesk user add')", *user)
	}
	if err != nil {
		return err
	}
	key, _, err := auth.New(a.db, 0).CreateAPIKey(ctx, u.ID, *name)
	if err != nil {
		return fmt.Errorf("apikey create: %w", err)
	}
	fmt.Fprintln(e.stdout, key)
	fmt.Fprintln(e.stderr, "(shown once: only its hash is stored)")
	return nil
}
