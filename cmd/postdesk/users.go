package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/store"
)

func runUser(ctx context.Context, e env, args []string) error {
	args, done, err := subcommand(e, "user", "add", args)
	if done {
		return err
	}
	var email, name, role *string
	var password string
	a, _, done, err := start(ctx, e, "user", args, func(fs *flag.FlagSet) {
		email = fs.String("email", "", "the user's email address (required)")
		name = fs.String("name", "", "the user's display name")
		role = fs.String("role", store.RoleAgent, "admin or agent")
	}, func(*flag.FlagSet) error {
		if *email == "" {
			return errors.New("user add: --email is required")
		}
		if *role != store.RoleAdmin && *role != store.RoleAgent {
			return fmt.Errorf("user add: --role must be admin or agent, not %q", *role)
		}
		var err error
		password, err = readPassword(e)
		return err
	})
	if done {
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
	args, done, err := subcommand(e, "apikey", "create", args)
	if done {
		return err
	}
	var user, name *string
	a, _, done, err := start(ctx, e, "apikey", args, func(fs *flag.FlagSet) {
		user = fs.String("user", "", "email of the user the key acts as (required)")
		name = fs.String("name", "", "a label for the key")
	}, func(*flag.FlagSet) error {
		if *user == "" {
			return errors.New("apikey create: --user is required")
		}
		return nil
	})
	if done {
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
