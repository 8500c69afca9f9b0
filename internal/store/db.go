// Package store owns Postfach's persistent state: the SQL schema and its migrations for
// SQLite and PostgreSQL, and one file of SQL per entity. Every query of tenant data carries
// the tenant's id in its WHERE clause; there is no call that reads tenant rows without one.
// Driver errors are translated into the store's own errors (ErrNotFound, ErrConflict) so that
// callers never depend on a driver.
//
// On-disk rules: SQLite runs in WAL mode with synchronous=FULL, so a committed transaction
// survives power loss; writes use BEGIN IMMEDIATE so that concurrent writers queue on the
// busy timeout instead of failing on lock upgrades. Times are stored as Unix milliseconds
// (BIGINT) so that both dialects compare them the same way.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the SQL flavour behind a DB.
type Dialect int

const (
	SQLite Dialect = iota
	Postgres
)

func (d Dialect) String() string {
	if d == Postgres {
		return "postgres"
	}
	return "sqlite"
}

// Errors the store returns instead of driver errors.
var (
	ErrNotFound = errors.New("store: not found")
	ErrConflict = errors.New("store: conflicts with an existing record")
)

// DB is the database handle shared by all entity files.
type DB struct {
	sql     *sql.DB
	dialect Dialect
	now     func() time.Time
	cache   stmtCache
	group   *groupCommit // SQLite: concurrent InTx calls share a transaction; nil on PostgreSQL

	stopCheckpoints func() // SQLite: ends the background checkpointer
}

// Open connects to PostgreSQL when url starts with postgres://, otherwise opens (and creates)
// the SQLite database file at sqlitePath.
func Open(ctx context.Context, url, sqlitePath string) (*DB, error) {
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		db, err := sql.Open("pgx", url)
		if err != nil {
			return nil, fmt.Errorf("store: open postgres: %w", err)
		}
		db.SetMaxOpenConns(32)
		db.SetMaxIdleConns(32)
		db.SetConnMaxIdleTime(5 * time.Minute)
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("store: connect postgres: %w", err)
		}
		return &DB{sql: db, dialect: Postgres, now: time.Now}, nil
	}
	if dir := filepath.Dir(sqlitePath); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create data directory: %w", err)
		}
	}
	dsn := "file:" + sqlitePath + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
		"&_pragma=busy_timeout(15000)&_pragma=foreign_keys(1)&_txlock=immediate" +
		// Savepoints of the group commit keep their undo pages in memory, not in a temporary
		// file (a write system call per page); each connection caches 8 MB of pages.
		"&_pragma=temp_store(MEMORY)&_pragma=cache_size(-8000)" +
		// Checkpoints run in the background (checkpointer), not inside a commit.
		"&_pragma=wal_autocheckpoint(0)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	// Readers run in parallel under WAL; writers serialise on BEGIN IMMEDIATE.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", sqlitePath, err)
	}
	d := &DB{sql: db, dialect: SQLite, now: time.Now, group: newGroupCommit(groupCommitMax)}
	d.stopCheckpoints = d.startCheckpointer(checkpointEvery)
	return d, nil
}

// Close releases the prepared statements and the connections.
func (db *DB) Close() error {
	if db.stopCheckpoints != nil {
		db.stopCheckpoints()
	}
	db.cache.mu.Lock()
	for _, st := range db.cache.stmts {
		st.Close()
	}
	db.cache.stmts = nil
	db.cache.mu.Unlock()
	return db.sql.Close()
}

// Dialect reports which SQL flavour is in use.
func (db *DB) Dialect() Dialect { return db.dialect }

// SQL exposes the underlying handle for packages that own their own tables (queue, messages).
func (db *DB) SQL() *sql.DB { return db.sql }

// SetClock replaces the time source; tests compress time with it.
func (db *DB) SetClock(now func() time.Time) { db.now = now }

// Now is the store's clock in Unix milliseconds.
func (db *DB) Now() int64 { return db.now().UnixMilli() }

// Rebind turns the portable "?" placeholders into "$1, $2, …" for PostgreSQL.
func (db *DB) Rebind(q string) string { return Rebind(db.dialect, q) }

// Rebind turns "?" placeholders into the dialect's form. Question marks inside string
// literals are left alone.
func Rebind(d Dialect, q string) string {
	if d != Postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	inString := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			inString = !inString
			b.WriteByte(c)
		case c == '?' && !inString:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Querier is what both *sql.DB and *sql.Tx offer; entity code runs on either.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// groupCommitMax bounds how many InTx calls share one SQLite transaction.
const groupCommitMax = 128

// Tx is a transaction with the dialect's placeholder rewriting.
type Tx struct {
	q       Querier
	dialect Dialect
	now     int64
	shared  bool // part of a group-committed SQLite transaction (see groupcommit.go)

	// On SQLite, statements run prepared: parsing the SQL text on every call cost about a
	// fifth of the CPU of a send. db holds the prepared statements; stx and bound are the
	// transaction they are bound to (nil for reads on the pool).
	db    *DB
	stx   *sql.Tx
	bound map[string]*sql.Stmt
}

// stmt returns q prepared (and bound to the transaction), or nil to run it unprepared
// (PostgreSQL, whose driver caches statements itself; a statement that fails to prepare,
// which then reports its error by running).
func (t *Tx) stmt(ctx context.Context, q string) *sql.Stmt {
	if t.db == nil {
		return nil
	}
	shared := t.db.cachedStmt(ctx, q)
	if shared == nil || t.stx == nil {
		return shared
	}
	if st, ok := t.bound[q]; ok {
		return st
	}
	st := t.stx.StmtContext(ctx, shared) // closed with the transaction
	t.bound[q] = st
	return st
}

// stmtCtx is the context a statement runs with: on a shared transaction without the
// caller's cancellation, because SQLite rolls back the whole transaction when a write
// statement is interrupted.
func (t *Tx) stmtCtx(ctx context.Context) context.Context {
	if t.shared {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

func (t *Tx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	ctx = t.stmtCtx(ctx)
	if st := t.stmt(ctx, q); st != nil {
		res, err := st.ExecContext(ctx, args...)
		return res, mapErr(err)
	}
	res, err := t.q.ExecContext(ctx, Rebind(t.dialect, q), args...)
	return res, mapErr(err)
}

func (t *Tx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	ctx = t.stmtCtx(ctx)
	if st := t.stmt(ctx, q); st != nil {
		rows, err := st.QueryContext(ctx, args...)
		return rows, mapErr(err)
	}
	rows, err := t.q.QueryContext(ctx, Rebind(t.dialect, q), args...)
	return rows, mapErr(err)
}

func (t *Tx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	ctx = t.stmtCtx(ctx)
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.q.QueryRowContext(ctx, Rebind(t.dialect, q), args...)
}

// Exec, Query and QueryRow are for packages that own tables outside this package.
func (t *Tx) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.exec(ctx, q, args...)
}
func (t *Tx) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.query(ctx, q, args...)
}
func (t *Tx) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return t.queryRow(ctx, q, args...)
}

// Dialect of the transaction.
func (t *Tx) Dialect() Dialect { return t.dialect }

// Now is the transaction's timestamp in Unix milliseconds: one value for all its rows.
func (t *Tx) Now() int64 { return t.now }

// insertID runs an INSERT … RETURNING id (both dialects support RETURNING).
func (t *Tx) insertID(ctx context.Context, q string, args ...any) (int64, error) {
	var id int64
	if err := t.queryRow(ctx, q+" RETURNING id", args...).Scan(&id); err != nil {
		return 0, mapErr(err)
	}
	return id, nil
}

// read gives a non-transactional Tx for reads.
func (db *DB) read() *Tx {
	t := &Tx{q: db.sql, dialect: db.dialect, now: db.Now()}
	if db.dialect == SQLite {
		t.db = db
	}
	return t
}

// Read runs fn outside a transaction (reads that need no snapshot across statements).
func (db *DB) Read() *Tx { return db.read() }

// InTx runs fn in one transaction and returns once it is committed; an error from fn rolls
// back fn's statements. On SQLite concurrent calls share a transaction and its commit
// (groupcommit.go), so fn must not call InTx itself and must not wait for another
// goroutine's InTx. On PostgreSQL every call is its own transaction; serialisation
// failures and deadlocks are retried a few times.
func (db *DB) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	if db.group != nil {
		return db.inSharedTx(ctx, fn)
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = db.inTxOnce(ctx, fn)
		if err == nil || !isBusy(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 20 * time.Millisecond):
		}
	}
	return err
}

func (db *DB) inTxOnce(ctx context.Context, fn func(tx *Tx) error) error {
	stx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", mapErr(err))
	}
	tx := &Tx{q: stx, dialect: db.dialect, now: db.Now()}
	if err := fn(tx); err != nil {
		_ = stx.Rollback()
		return err
	}
	if err := stx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", mapErr(err))
	}
	return nil
}

func isBusy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code() & 0xff
		return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01" // serialization failure, deadlock
	}
	return false
}

// mapErr translates driver errors into the store's errors, keeping the original wrapped.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %v", ErrConflict, err)
		}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	return err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
