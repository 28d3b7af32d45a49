package mailtest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// postfixFiles is Postfix's list of the files and folders of an installation
// (name:type:owner:group:mode:flags), which post-install uses.
const postfixFiles = "/etc/postfix/postfix-files"

// makePostfixDirs creates the queue and data folders listed in postfixFiles,
// with their owners and modes, as "postfix start" would (post-install
// create-missing, part of its integrity checks). startPostfix then skips
// those checks: they run some 40 postconf and shell processes, 0.15 s on an
// idle machine and several seconds on a loaded one.
func makePostfixDirs(root string) error {
	f, err := os.Open(postfixFiles)
	if err != nil {
		return err
	}
	defer f.Close()
	ids := map[string]int{"root": 0, "-": -1}
	lookup := func(name string, group bool) (int, error) {
		name = strings.NewReplacer("$mail_owner", "postfix", "$setgid_group", "postdrop").Replace(name)
		if id, ok := ids[name]; ok {
			return id, nil
		}
		var s string
		if group {
			g, err := user.LookupGroup(name)
			if err != nil {
				return 0, err
			}
			s = g.Gid
		} else {
			u, err := user.Lookup(name)
			if err != nil {
				return 0, err
			}
			s = u.Uid
		}
		id, err := strconv.Atoi(s)
		ids[name] = id
		return id, err
	}
	dirs := strings.NewReplacer("$queue_directory", filepath.Join(root, "postfix/spool"), "$data_directory", filepath.Join(root, "postfix/data"))
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 5 || fields[1] != "d" ||
			!(strings.HasPrefix(fields[0], "$queue_directory") || strings.HasPrefix(fields[0], "$data_directory")) {
			continue
		}
		path := dirs.Replace(fields[0])
		uid, err := lookup(fields[2], false)
		if err != nil {
			return err
		}
		gid, err := lookup(fields[3], true)
		if err != nil {
			return err
		}
		mode, err := strconv.ParseUint(fields[4], 8, 32)
		if err != nil {
			return fmt.Errorf("%s: mode of %s: %w", postfixFiles, fields[0], err)
		}
		if err := os.MkdirAll(path, 0o755); err != nil {
			return err
		}
		if err := os.Chown(path, uid, gid); err != nil {
			return err
		}
		if err := os.Chmod(path, os.FileMode(mode)); err != nil {
			return err
		}
	}
	return sc.Err()
}

// startPostfix starts the Postfix master and waits for its ports to greet.
func (s *Stack) startPostfix(ctx context.Context) error {
	// Postfix's own switch ("postfix quick-stop" leaves it) to start without
	// the integrity checks; postfix-script removes it.
	quick := filepath.Join(s.Dir, "postfix/spool/quick-start")
	if err := os.WriteFile(quick, nil, 0o644); err != nil {
		return fmt.Errorf("postfix: %w", err)
	}
	if err := runDaemon(ctx, filepath.Join(s.Dir, "log/postfix.stdout"), postfixBin, "-c", s.postfixConfDir(), "start"); err != nil {
		return err
	}
	alive := func() error {
		if pid, _ := readPidFile(s.postfixPidFile()); pid != 0 && running(pid) {
			return nil
		}
		return fmt.Errorf("postfix master not running:\n%s", s.logTail("log/postfix.log", 20))
	}
	gs := []greeting{{addr: s.SMTPAddr, prefix: "220 "}, {addr: s.SubmissionAddr, prefix: "220 "}}
	if s.SubmissionsAddr != "" {
		gs = append(gs, greeting{addr: s.SubmissionsAddr, prefix: "220 ", tls: s.TLSConfig()})
	}
	if err := waitGreetings(ctx, alive, gs...); err != nil {
		if strings.Contains(s.logTail("log/postfix.log", 20), "in use") {
			return fmt.Errorf("postfix: %w: %w", errPortInUse, err)
		}
		return fmt.Errorf("postfix: %w", err)
	}
	// Postfix listens with SO_REUSEPORT: where a picked port was taken by
	// another stack's Postfix in the meantime, both start, and the kernel
	// shares the connections between them. Only a count shows it.
	for _, p := range []int{s.cfg.SMTPPort, s.cfg.SubmissionPort, s.cfg.SubmissionsPort} {
		if p != 0 && listeners(p) > 1 {
			return fmt.Errorf("postfix: %w: 127.0.0.1:%d is also another process's (SO_REUSEPORT)", errPortInUse, p)
		}
	}
	return nil
}

// stopPostfix stops this instance's Postfix master, if running.
func (s *Stack) stopPostfix() error {
	if err := stopMaster(s.postfixPidFile(), s.ownsPostfix); err != nil {
		return fmt.Errorf("stop postfix: %w", err)
	}
	return nil
}
