package storetest

import (
	"context"
	"testing"

	"github.com/postdesk/postdesk/internal/store"
)

// PoisonTrigger makes the database refuse, for real, every message whose
// subject contains "poison" (a trigger that raises an error on insert into
// messages), the way a database refuses a value it cannot store. The
// returned function drops the trigger ("the code is fixed"); it is also
// dropped at cleanup.
func PoisonTrigger(t testing.TB, db *store.DB) (drop func()) {
	t.Helper()
	ctx := context.Background()
	create := []string{`CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.subject LIKE '%poison%'
		BEGIN SELECT RAISE(ABORT, 'poison: this database refuses the message'); END`}
	dropSQL := `DROP TRIGGER IF EXISTS poison`
	if db.Dialect() == "postgres" {
		create = []string{`CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				IF NEW.subject LIKE '%poison%' THEN
					RAISE EXCEPTION 'poison: this database refuses the message';
				END IF;
				RETURN NEW;
			END $$`,
			`CREATE TRIGGER poison BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION poison()`}
		dropSQL = `DROP TRIGGER IF EXISTS poison ON messages`
	}
	for _, q := range create {
		if _, err := db.SQL().ExecContext(ctx, q); err != nil {
			t.Fatalf("create the poison trigger: %v", err)
		}
	}
	dropped := false
	drop = func() {
		t.Helper()
		if dropped {
			return
		}
		dropped = true
		if _, err := db.SQL().ExecContext(ctx, dropSQL); err != nil {
			t.Fatalf("drop the poison trigger: %v", err)
		}
	}
	t.Cleanup(drop)
	return drop
}
