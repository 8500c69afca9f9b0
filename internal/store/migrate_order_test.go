package store

import "testing"

// Versions must be unique and ascending: a duplicated line (easy to commit when several
// people add migrations at once) would otherwise be skipped silently as "already applied".
func TestMigrationVersionsAscending(t *testing.T) {
	for i := 1; i < len(migrations); i++ {
		if migrations[i].version <= migrations[i-1].version {
			t.Fatalf("migration %d (%s) follows %d (%s): versions must be unique and ascending",
				migrations[i].version, migrations[i].name, migrations[i-1].version, migrations[i-1].name)
		}
	}
}
