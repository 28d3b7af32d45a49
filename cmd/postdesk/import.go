package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/store"
)

func runImport(ctx context.Context, e env, args []string) error {
	var address *string
	var files []string
	a, _, done, err := startNew(ctx, e, "import", args, func(fs *flag.FlagSet) {
		address = fs.String("mailbox", "", "the support address the messages arrived at (created if new; required)")
	}, func(fs *flag.FlagSet) error {
		if *address == "" || fs.NArg() == 0 {
			return errors.New("import: --mailbox and at least one FILE or DIR are required, as in: postdesk import --mailbox support@example.com ./mail (see postdesk import --help)")
		}
		var err error
		if files, err = importFiles(fs.Args()); err == nil && len(files) == 0 {
			err = fmt.Errorf("import: no files in %s: nothing to import", strings.Join(fs.Args(), ", "))
		}
		return err
	})
	if done {
		return err
	}
	defer a.close()
	cfg := a.cfg
	// desk creates the mailbox when it is new, as for every surface.
	mb, created, err := desk.NewAdmin(a.db, nil, nil).EnsureMailbox(ctx, *address)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if created {
		fmt.Fprintf(e.stdout, "created mailbox %s\n", mb.Address)
	}
	// Each message's outcome is printed below, so ingest's own log lines would only repeat it.
	in := ingest.New(a.db, ingest.Options{SupportAddresses: cfg.SupportAddresses})
	counts := map[ingest.Outcome]int{}
	failed, quarantined := 0, 0
	// ingestOne stores one message; one that cannot be stored is
	// quarantined with its source (retried later from Admin -> Emails or
	// the API) and the import goes on.
	ingestOne := func(name string, r io.Reader) {
		res, err := in.IngestOrQuarantine(ctx, mb, r, ingest.Failed{Origin: store.OriginImport, SourceName: name})
		var q *ingest.QuarantinedError
		switch {
		case errors.As(err, &q):
			quarantined++
			fmt.Fprintf(e.stdout, "%s: QUARANTINED as #%d: it could not be stored: %v (its source is kept: retry it in Admin -> Emails or with POST /api/v1/quarantine/%d/retry)\n",
				name, q.Row.ID, q.Err, q.Row.ID)
		case err != nil:
			failed++
			fmt.Fprintf(e.stdout, "%s: FAILED: %v\n", name, err)
		default:
			counts[res.Outcome]++
			fmt.Fprintf(e.stdout, "%s: %s\n", name, res)
		}
	}
	for _, path := range files {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		isMbox, err := looksLikeMbox(path)
		if err != nil {
			failed++
			fmt.Fprintf(e.stdout, "%s: FAILED: %v\n", path, err)
			continue
		}
		if !isMbox {
			f, err := os.Open(path)
			if err != nil {
				failed++
				fmt.Fprintf(e.stdout, "%s: FAILED: %v\n", path, err)
				continue
			}
			ingestOne(path, f)
			f.Close()
			continue
		}
		n, err := eachMboxMessage(path, func(i int, r io.Reader) error {
			ingestOne(fmt.Sprintf("%s#%d", path, i), r)
			return ctx.Err()
		})
		if err != nil {
			failed++
			fmt.Fprintf(e.stdout, "%s (after %d messages): FAILED: %v\n", path, n, err)
		}
	}
	fmt.Fprintf(e.stdout, "done: %d new tickets, %d joined, %d attached to tickets, %d ignored, %d duplicates, %d quarantined, %d failed\n",
		counts[ingest.NewTicket], counts[ingest.Joined], counts[ingest.Attached], counts[ingest.Ignored], counts[ingest.Duplicate], quarantined, failed)
	messages := func(n int) string {
		if n == 1 {
			return "1 message was"
		}
		return fmt.Sprintf("%d messages were", n)
	}
	switch {
	case quarantined > 0 && failed > 0:
		return fmt.Errorf("import: %s quarantined (could not be stored) and %d failed", messages(quarantined), failed)
	case quarantined > 0:
		return fmt.Errorf("import: %s quarantined (could not be stored); the others were imported", messages(quarantined))
	case failed > 0:
		return fmt.Errorf("import: %s not imported (failed)", messages(failed))
	}
	return nil
}

// importFiles expands directories into their regular files, sorted.
func importFiles(args []string) ([]string, error) {
	var out []string
	for _, arg := range args {
		st, err := os.Stat(arg)
		if err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		if !st.IsDir() {
			out = append(out, arg)
			continue
		}
		var found []string
		err = filepath.WalkDir(arg, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
				found = append(found, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

// looksLikeMbox reports whether a file starts with an mbox "From " line.
func looksLikeMbox(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, 5)
	n, _ := io.ReadFull(f, head)
	return n == 5 && string(head) == "From ", nil
}

// eachMboxMessage splits an mbox file (mboxo or mboxrd: ">From " lines
// are unescaped one level) and calls fn with each message, streamed
// through a temporary file so a large message is never held in memory.
func eachMboxMessage(path string, fn func(i int, r io.Reader) error) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	tmp, err := os.CreateTemp("", "postdesk-mbox-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	n := 0
	started := false
	prevBlank := true
	flush := func() error {
		if !started {
			return nil
		}
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return err
		}
		n++
		if err := fn(n, tmp); err != nil {
			return err
		}
		if err := tmp.Truncate(0); err != nil {
			return err
		}
		_, err := tmp.Seek(0, io.SeekStart)
		return err
	}
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A very long line: pass it through in pieces.
			if _, werr := tmp.Write(line); werr != nil {
				return n, werr
			}
			prevBlank = false
			continue
		}
		if len(line) > 0 {
			switch {
			case prevBlank && bytes.HasPrefix(line, []byte("From ")):
				if err := flush(); err != nil {
					return n, err
				}
				started = true
			default:
				if bytes.HasPrefix(line, []byte(">")) && bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From ")) {
					line = line[1:]
				}
				if _, werr := tmp.Write(line); werr != nil {
					return n, werr
				}
			}
			prevBlank = len(bytes.TrimRight(line, "\r\n")) == 0
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
	}
	return n, flush()
}
