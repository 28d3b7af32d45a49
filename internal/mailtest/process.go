package mailtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Timeouts of starting and stopping the daemons.
const (
	readyTimeout = 20 * time.Second // until every listener greets
	termTimeout  = 10 * time.Second // SIGTERM to SIGKILL
	killTimeout  = 5 * time.Second  // SIGKILL to gone
)

// errPortInUse reports that a daemon could not bind one of the ports picked
// for it (another process took it in between); StartStack then retries on
// other ports.
var errPortInUse = errors.New("port already in use")

// freePorts returns n distinct free TCP ports on 127.0.0.1. They are held
// open together so that they differ, then released for the daemons to bind.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// listeners counts the listening TCP sockets on 127.0.0.1:port, from
// /proc/net/tcp ("0100007F:PORT" in hex, state 0A).
func listeners(port int) int {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	n := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == want && f[3] == "0A" {
			n++
		}
	}
	return n
}

// waitPortsFree waits until each port can be bound again (the listeners of a
// stopped master's children are closed).
func waitPortsFree(ctx context.Context, ports ...int) error {
	for _, p := range ports {
		if p == 0 {
			continue
		}
		for {
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err == nil {
				ln.Close()
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("wait for port %d to be free: %w", p, context.Cause(ctx))
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// runDaemon runs a command that daemonizes (dovecot, postfix start) with
// stdin from /dev/null and stdout/stderr appended to logPath: Dovecot's master
// keeps the caller's stderr open, so a pipe would never see EOF.
func runDaemon(ctx context.Context, logPath string, name string, args ...string) error {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", logPath, err)
	}
	defer out.Close()
	start, _ := out.Seek(0, 2)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = nil // /dev/null
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Run(); err != nil {
		msg := readFrom(logPath, start)
		if strings.Contains(msg, "in use") {
			return fmt.Errorf("%s: %w: %s", name, errPortInUse, msg)
		}
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return nil
}

// readFrom returns the file's content from offset on, trimmed, or "".
func readFrom(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	return strings.TrimSpace(string(b[offset:]))
}

// greeting describes how to wait for a listener: its address, the prefix of
// the greeting line ("* OK", "220 "), and whether it speaks TLS from the start.
type greeting struct {
	addr, prefix string
	tls          *tls.Config
}

// waitGreetings waits until every listener answers with its greeting, or
// alive reports the master gone, or the timeout passes.
func waitGreetings(ctx context.Context, alive func() error, gs ...greeting) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for _, g := range gs {
		for {
			err := greet(ctx, g)
			if err == nil {
				break
			}
			if aerr := alive(); aerr != nil {
				return aerr
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("wait for %q from %s: %w (last: %v)", g.prefix, g.addr, context.Cause(ctx), err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// greet connects once and reads the greeting line.
func greet(ctx context.Context, g greeting) error {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", g.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return err
	}
	if g.tls != nil {
		cfg := g.tls.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(g.addr)
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("tls handshake: %w", err)
		}
		conn = tc
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, g.prefix) {
		return fmt.Errorf("unexpected greeting %q", strings.TrimSpace(line))
	}
	return nil
}

// readPidFile returns the pid in path (Postfix pads it with spaces), or 0
// when there is no such file.
func readPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("pid file %s: bad content %q", path, b)
	}
	return pid, nil
}

// running reports whether pid is a live process: /proc/PID/stat exists and
// its state is not zombie or dead. kill -0 would also succeed for a zombie,
// which a re-parented master becomes when nothing reaps it.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) S ...": comm may contain spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	switch b[i+2] {
	case 'Z', 'X', 'x':
		return false
	}
	return true
}

// procHas reports whether /proc/PID/<file> (cmdline, environ: NUL-separated)
// contains the entry want.
func procHas(pid int, file, want string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + file)
	if err != nil {
		return false
	}
	for _, f := range bytes.Split(b, []byte{0}) {
		if string(f) == want {
			return true
		}
	}
	return false
}

// stopMaster stops the master whose pid is in pidFile: SIGTERM, wait until it
// is gone, SIGKILL after termTimeout. Children the master left running are
// then killed: Dovecot's imap processes outlive their master while their
// client stays connected, so a restart would not drop the sessions (and log
// and stats linger). ours must confirm that a pid is this instance's master
// or child (pid files outlive processes, pids are reused); a pid that is not
// ours is never signalled.
func stopMaster(pidFile string, ours func(pid int) bool) error {
	pid, err := readPidFile(pidFile)
	if err != nil || pid == 0 || !running(pid) {
		return err
	}
	if !ours(pid) {
		return nil // a stale pid file: the pid now belongs to another process
	}
	kids := childrenOf(pid)
	if err := signal(pid, syscall.SIGTERM); err != nil {
		return err
	}
	if !waitGone(pid, termTimeout) {
		if err := signal(pid, syscall.SIGKILL); err != nil {
			return err
		}
		if !waitGone(pid, killTimeout) {
			return fmt.Errorf("master %d survived SIGKILL", pid)
		}
	}
	for _, k := range kids {
		if running(k) && ours(k) {
			if err := signal(k, syscall.SIGKILL); err != nil {
				return err
			}
		}
	}
	for _, k := range kids {
		if !waitGone(k, killTimeout) {
			return fmt.Errorf("process %d of master %d survived SIGKILL", k, pid)
		}
	}
	return nil
}

// signal sends sig to pid; a process already gone is not an error.
func signal(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %d: %w", pid, err)
	}
	return nil
}

// childrenOf returns the pids of the running processes whose parent is pid.
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var kids []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// "pid (comm) S ppid ..."
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			kids = append(kids, child)
		}
	}
	return kids
}

// waitGone polls until pid is no longer running or d passes.
func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for running(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// dovecotPidFile and postfixPidFile are where the masters record their pids.
func (s *Stack) dovecotPidFile() string { return filepath.Join(s.Dir, "run/dovecot/master.pid") }
func (s *Stack) postfixPidFile() string { return filepath.Join(s.Dir, "postfix/spool/pid/master.pid") }
func (s *Stack) dovecotConf() string    { return filepath.Join(s.Dir, "etc/dovecot/dovecot.conf") }
func (s *Stack) postfixConfDir() string { return filepath.Join(s.Dir, "etc/postfix") }

// ownsDovecot: this instance's Dovecot master runs "dovecot -c <our conf>";
// its children are titled "dovecot-<instance_name>/<service> ...".
func (s *Stack) ownsDovecot(pid int) bool {
	if procHas(pid, "cmdline", s.dovecotConf()) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && bytes.HasPrefix(b, []byte("dovecot-"+s.cfg.Instance+"/"))
}

// ownsPostfix: the postfix command starts the master with MAIL_CONFIG set to
// the configuration folder it was given, and the master passes it on.
func (s *Stack) ownsPostfix(pid int) bool {
	return procHas(pid, "environ", "MAIL_CONFIG="+s.postfixConfDir())
}

// startDovecot wipes run/dovecot (a stale anvil socket stalls auth 5 s),
// starts the master and waits for IMAP and LMTP to greet (Dovecot greets only
// once auth is up).
func (s *Stack) startDovecot(ctx context.Context) error {
	if err := os.RemoveAll(filepath.Join(s.Dir, "run/dovecot")); err != nil {
		return fmt.Errorf("clean run/dovecot: %w", err)
	}
	// Always -c: a bare "dovecot" starts the system instance on 0.0.0.0.
	if err := runDaemon(ctx, filepath.Join(s.Dir, "log/dovecot.stdout"), dovecotBin, "-c", s.dovecotConf()); err != nil {
		return err
	}
	alive := func() error {
		pid, _ := readPidFile(s.dovecotPidFile())
		if pid != 0 && running(pid) {
			return nil
		}
		time.Sleep(50 * time.Millisecond) // the pid file may not be written yet
		if pid, _ = readPidFile(s.dovecotPidFile()); pid != 0 && running(pid) {
			return nil
		}
		tail := s.logTail("log/dovecot.log", 20)
		if strings.Contains(tail, "in use") {
			return fmt.Errorf("dovecot exited: %w:\n%s", errPortInUse, tail)
		}
		return fmt.Errorf("dovecot exited:\n%s", tail)
	}
	gs := []greeting{{addr: s.IMAPAddr, prefix: "* OK"}, {addr: s.LMTPAddr, prefix: "220 "}}
	if s.IMAPSAddr != "" {
		gs = append(gs, greeting{addr: s.IMAPSAddr, prefix: "* OK", tls: s.TLSConfig()})
	}
	if err := waitGreetings(ctx, alive, gs...); err != nil {
		return fmt.Errorf("dovecot: %w", err)
	}
	return nil
}

// stopDovecot stops this instance's Dovecot master, if running.
func (s *Stack) stopDovecot() error {
	if err := stopMaster(s.dovecotPidFile(), s.ownsDovecot); err != nil {
		return fmt.Errorf("stop dovecot: %w", err)
	}
	return nil
}
