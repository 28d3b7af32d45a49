package store

import (
	"strings"
	"testing"
)

// A server too old for the schema is refused with its release and the
// release needed, before any migration starts.
func TestSupportedPostgres(t *testing.T) {
	for _, c := range []struct {
		version, err string
	}{
		{"150010", ""},
		{"140000", ""},
		{"130012", "PostgreSQL 13.12 is too old: Postdesk needs PostgreSQL 14 or newer"},
		{"180001", ""},
		{"120015", "PostgreSQL 12.15 is too old: Postdesk needs PostgreSQL 14 or newer"},
		{"90624", "PostgreSQL 9.6.24 is too old: Postdesk needs PostgreSQL 14 or newer"},
		{"", `unexpected server_version_num ""`},
		{"15beta", `unexpected server_version_num "15beta"`},
	} {
		err := supportedPostgres(c.version)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("supportedPostgres(%q) = %v, want %q", c.version, err, c.err)
		}
	}
}
