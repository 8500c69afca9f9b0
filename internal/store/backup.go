package store

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Backup format (C4), the same for SQLite and PostgreSQL so that a backup of one restores
// into the other: a gzip-compressed tar with
//
//	manifest.json          format, schema version, source dialect, time, table order
//	postfach.key           the secrets master key, only when the operator asks for it
//	tables/<name>.jsonl    first line {"columns": [...]}, then one JSON array per row;
//	                       binary values are {"b64": "..."}, integers JSON numbers
//	end.json               row counts per table: a backup without it is incomplete
//
// All tables are read in one read-only snapshot (SQLite: one deferred read transaction in
// WAL mode, which does not block writers; PostgreSQL: REPEATABLE READ READ ONLY), so the
// backup is consistent while the server keeps running.

// BackupFormat names the format in the manifest.
const BackupFormat = "postfach-backup/1"

// Manifest is the first entry of a backup.
type Manifest struct {
	Format        string   `json:"format"`
	SchemaVersion int      `json:"schema_version"`
	Dialect       string   `json:"dialect"`
	CreatedAt     string   `json:"created_at"`
	Tables        []string `json:"tables"`
	HasKey        bool     `json:"has_key"`
}

type backupEnd struct {
	Rows map[string]int64 `json:"rows"`
}

type tableHeader struct {
	Columns []string `json:"columns"`
}

// BackupResult says what a backup holds.
type BackupResult struct {
	Manifest Manifest
	Rows     map[string]int64
}

// reader is what both a pinned connection and a transaction offer.
type reader interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Backup writes a consistent snapshot of every table to w; key, when not nil, is included.
func (db *DB) Backup(ctx context.Context, w io.Writer, key []byte) (BackupResult, error) {
	var res BackupResult
	var q reader
	switch db.dialect {
	case Postgres:
		tx, err := db.sql.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
		if err != nil {
			return res, fmt.Errorf("backup: begin: %w", err)
		}
		defer tx.Rollback()
		q = tx
	default:
		// A plain BEGIN is deferred: the first SELECT takes a WAL read snapshot that every
		// later SELECT of this transaction shares, and writers are not blocked.
		conn, err := db.sql.Conn(ctx)
		if err != nil {
			return res, fmt.Errorf("backup: %w", err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
			return res, fmt.Errorf("backup: begin: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		q = conn
	}
	tables, err := db.tablesInOrder(ctx, q)
	if err != nil {
		return res, err
	}
	var version int
	if err := queryOne(ctx, q, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`, &version); err != nil {
		return res, fmt.Errorf("backup: schema version: %w", err)
	}
	res.Manifest = Manifest{Format: BackupFormat, SchemaVersion: version, Dialect: db.dialect.String(),
		CreatedAt: time.Now().UTC().Format(time.RFC3339), Tables: tables, HasKey: key != nil}
	res.Rows = map[string]int64{}

	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	if err := writeJSONEntry(tw, "manifest.json", res.Manifest); err != nil {
		return res, err
	}
	if key != nil {
		if err := writeEntry(tw, "postfach.key", key, 0o600); err != nil {
			return res, err
		}
	}
	for _, table := range tables {
		n, err := exportTable(ctx, q, tw, table)
		if err != nil {
			return res, err
		}
		res.Rows[table] = n
	}
	if err := writeJSONEntry(tw, "end.json", backupEnd{Rows: res.Rows}); err != nil {
		return res, err
	}
	if err := tw.Close(); err != nil {
		return res, fmt.Errorf("backup: %w", err)
	}
	if err := gz.Close(); err != nil {
		return res, fmt.Errorf("backup: %w", err)
	}
	return res, nil
}

func queryOne(ctx context.Context, q reader, query string, dst any) error {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		return errors.Join(rows.Err(), ErrNotFound)
	}
	return rows.Scan(dst)
}

func writeEntry(tw *tar.Writer, name string, data []byte, mode int64) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: time.Now(), Typeflag: tar.TypeReg}); err != nil {
		return fmt.Errorf("backup: %s: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("backup: %s: %w", name, err)
	}
	return nil
}

func writeJSONEntry(tw *tar.Writer, name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("backup: %s: %w", name, err)
	}
	return writeEntry(tw, name, b, 0o600)
}

// exportTable writes one table. A tar entry needs its size up front, so the rows are
// encoded into memory first; raw messages make this the size of the largest table.
func exportTable(ctx context.Context, q reader, tw *tar.Writer, table string) (int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT * FROM `+quoteIdent(table))
	if err != nil {
		return 0, fmt.Errorf("backup: read %s: %w", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, fmt.Errorf("backup: read %s: %w", table, err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if err := enc.Encode(tableHeader{Columns: cols}); err != nil {
		return 0, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, fmt.Errorf("backup: read %s: %w", table, err)
		}
		out := make([]any, len(vals))
		for i, v := range vals {
			out[i] = encodeValue(v)
		}
		if err := enc.Encode(out); err != nil {
			return n, fmt.Errorf("backup: encode %s: %w", table, err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("backup: read %s: %w", table, err)
	}
	return n, writeEntry(tw, "tables/"+table+".jsonl", buf.Bytes(), 0o600)
}

type blobValue struct {
	B64 string `json:"b64"`
}

func encodeValue(v any) any {
	switch x := v.(type) {
	case []byte:
		return blobValue{B64: base64.StdEncoding.EncodeToString(x)}
	case time.Time:
		return x.UnixMilli()
	}
	return v
}

func quoteIdent(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// tablesInOrder lists the application's tables so that every table comes after the tables
// its foreign keys reference (the order rows can be inserted in). schema_migrations is not
// part of a backup: the manifest carries the version.
func (db *DB) tablesInOrder(ctx context.Context, q reader) ([]string, error) {
	var listQ, fkQ string
	if db.dialect == Postgres {
		listQ = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`
		fkQ = `SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c
			WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace`
	} else {
		listQ = `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
		fkQ = `SELECT m.name, f."table" FROM sqlite_master m, pragma_foreign_key_list(m.name) f WHERE m.type = 'table'`
	}
	names, err := queryStrings(ctx, q, listQ)
	if err != nil {
		return nil, fmt.Errorf("backup: list tables: %w", err)
	}
	names = slices.DeleteFunc(names, func(n string) bool { return n == "schema_migrations" })
	rows, err := q.QueryContext(ctx, fkQ)
	if err != nil {
		return nil, fmt.Errorf("backup: foreign keys: %w", err)
	}
	deps := map[string][]string{}
	for rows.Next() {
		var from, to string
		if err := rows.Scan(&from, &to); err != nil {
			rows.Close()
			return nil, fmt.Errorf("backup: foreign keys: %w", err)
		}
		if from != to {
			deps[strings.Trim(from, `"`)] = append(deps[strings.Trim(from, `"`)], strings.Trim(to, `"`))
		}
	}
	rows.Close()
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string) error
	visit = func(n string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("backup: foreign key cycle at table %s", n)
		case 2:
			return nil
		}
		state[n] = 1
		for _, d := range deps[n] {
			if slices.Contains(names, d) {
				if err := visit(d); err != nil {
					return err
				}
			}
		}
		state[n] = 2
		order = append(order, n)
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func queryStrings(ctx context.Context, q reader, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// RestoreResult says what a restore wrote.
type RestoreResult struct {
	Manifest Manifest
	Rows     map[string]int64
	Key      []byte // the master key, when the backup holds one
}

// ErrNotEmpty is returned by Restore when the target database already holds data.
var ErrNotEmpty = errors.New("store: restore needs an empty database")

// Restore reads a backup into this database, which must be migrated and empty. Everything
// happens in one transaction; beforeCommit runs inside it after the rows are written (the
// caller switches off what must not run in a restored copy), and sees the result so far.
func (db *DB) Restore(ctx context.Context, r io.Reader, beforeCommit func(tx *Tx, res RestoreResult) error) (RestoreResult, error) {
	res := RestoreResult{Rows: map[string]int64{}}
	gz, err := gzip.NewReader(r)
	if err != nil {
		return res, fmt.Errorf("restore: not a postfach backup: %w", err)
	}
	tr := tar.NewReader(gz)
	err = db.InTx(ctx, func(tx *Tx) error {
		res = RestoreResult{Rows: map[string]int64{}}
		tables, err := db.tablesInOrder(ctx, tx.q)
		if err != nil {
			return err
		}
		for _, t := range tables {
			var n int64
			if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM `+quoteIdent(t)).Scan(&n); err != nil {
				return fmt.Errorf("restore: count %s: %w", t, err)
			}
			if n > 0 {
				return fmt.Errorf("%w: table %s has %d rows", ErrNotEmpty, t, n)
			}
		}
		var ended bool
		var end backupEnd
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("restore: read backup: %w", err)
			}
			switch {
			case hdr.Name == "manifest.json":
				if err := json.NewDecoder(tr).Decode(&res.Manifest); err != nil {
					return fmt.Errorf("restore: manifest: %w", err)
				}
				if res.Manifest.Format != BackupFormat {
					return fmt.Errorf("restore: unknown backup format %q", res.Manifest.Format)
				}
				if res.Manifest.SchemaVersion > LatestVersion() {
					return fmt.Errorf("restore: the backup has schema version %d, this binary knows %d: restore with a newer postfach", res.Manifest.SchemaVersion, LatestVersion())
				}
			case hdr.Name == "postfach.key":
				if res.Key, err = io.ReadAll(io.LimitReader(tr, 1<<16)); err != nil {
					return fmt.Errorf("restore: key: %w", err)
				}
			case strings.HasPrefix(hdr.Name, "tables/") && strings.HasSuffix(hdr.Name, ".jsonl"):
				if res.Manifest.Format == "" {
					return errors.New("restore: the backup does not start with its manifest")
				}
				table := strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "tables/"), ".jsonl")
				if !slices.Contains(tables, table) {
					return fmt.Errorf("restore: the backup has table %s, which this database does not have", table)
				}
				n, err := importTable(ctx, db, tx, tr, table)
				if err != nil {
					return err
				}
				res.Rows[table] = n
			case hdr.Name == "end.json":
				if err := json.NewDecoder(tr).Decode(&end); err != nil {
					return fmt.Errorf("restore: end marker: %w", err)
				}
				ended = true
			}
		}
		if !ended {
			return errors.New("restore: the backup is incomplete (no end marker)")
		}
		for t, n := range end.Rows {
			if res.Rows[t] != n {
				return fmt.Errorf("restore: table %s: %d rows read, the backup says %d", t, res.Rows[t], n)
			}
		}
		if res.Manifest.SchemaVersion < bodiesVersion {
			// Taken before message bodies had a table of their own: move them as the
			// migration did.
			for _, stmt := range splitStatements(db.expand(moveBodies)) {
				if _, err := tx.q.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("restore: move message bodies: %w", err)
				}
			}
		}
		if db.dialect == Postgres {
			for _, t := range tables {
				if res.Rows[t] == 0 {
					continue
				}
				kinds, err := columnKinds(ctx, db, tx, t)
				if err != nil {
					return err
				}
				if kinds["id"] != "int" {
					continue
				}
				// Identity columns continue after the restored ids.
				if _, err := tx.exec(ctx, `SELECT setval(pg_get_serial_sequence(?, 'id'), (SELECT MAX(id) FROM `+quoteIdent(t)+`))
					WHERE pg_get_serial_sequence(?, 'id') IS NOT NULL`, t, t); err != nil {
					return fmt.Errorf("restore: sequence of %s: %w", t, err)
				}
			}
		}
		if beforeCommit != nil {
			return beforeCommit(tx, res)
		}
		return nil
	})
	return res, err
}

// columnKinds maps a table's columns to "int", "bool", "blob", "real" or "text".
func columnKinds(ctx context.Context, db *DB, tx *Tx, table string) (map[string]string, error) {
	q := `SELECT name, type FROM pragma_table_info(?)`
	if db.dialect == Postgres {
		q = `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?`
	}
	rows, err := tx.query(ctx, q, table)
	if err != nil {
		return nil, fmt.Errorf("restore: columns of %s: %w", table, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, err
		}
		typ = strings.ToLower(typ)
		switch {
		case strings.Contains(typ, "bool"):
			out[name] = "bool"
		case strings.Contains(typ, "int"):
			out[name] = "int"
		case strings.Contains(typ, "blob") || strings.Contains(typ, "bytea"):
			out[name] = "blob"
		case strings.Contains(typ, "real") || strings.Contains(typ, "double") || strings.Contains(typ, "numeric"):
			out[name] = "real"
		default:
			out[name] = "text"
		}
	}
	return out, rows.Err()
}

func importTable(ctx context.Context, db *DB, tx *Tx, r io.Reader, table string) (int64, error) {
	kinds, err := columnKinds(ctx, db, tx, table)
	if err != nil {
		return 0, err
	}
	br := bufio.NewReaderSize(r, 1<<20)
	dec := json.NewDecoder(br)
	dec.UseNumber()
	var hdr tableHeader
	if err := dec.Decode(&hdr); err != nil {
		return 0, fmt.Errorf("restore: %s header: %w", table, err)
	}
	colKinds := make([]string, len(hdr.Columns))
	quoted := make([]string, len(hdr.Columns))
	for i, c := range hdr.Columns {
		k, ok := kinds[c]
		if !ok {
			return 0, fmt.Errorf("restore: table %s has no column %s in this database", table, c)
		}
		colKinds[i], quoted[i] = k, quoteIdent(c)
	}
	batch := max(1, 2000/max(1, len(hdr.Columns)))
	prefix := `INSERT INTO ` + quoteIdent(table) + ` (` + strings.Join(quoted, ", ") + `) VALUES `
	row := `(` + placeholders(len(hdr.Columns)) + `)`
	var args []any
	pending := 0
	flush := func() error {
		if pending == 0 {
			return nil
		}
		q := prefix + strings.TrimSuffix(strings.Repeat(row+", ", pending), ", ")
		if _, err := tx.exec(ctx, q, args...); err != nil {
			return fmt.Errorf("restore: insert into %s: %w", table, err)
		}
		args, pending = args[:0], 0
		return nil
	}
	var n int64
	for {
		var raw []json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return n, fmt.Errorf("restore: %s row %d: %w", table, n+1, err)
		}
		if len(raw) != len(hdr.Columns) {
			return n, fmt.Errorf("restore: %s row %d: %d values for %d columns", table, n+1, len(raw), len(hdr.Columns))
		}
		for i, v := range raw {
			val, err := decodeValue(v, colKinds[i])
			if err != nil {
				return n, fmt.Errorf("restore: %s row %d column %s: %w", table, n+1, hdr.Columns[i], err)
			}
			args = append(args, val)
		}
		pending++
		n++
		if pending >= batch {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	return n, flush()
}

// decodeValue turns a backup value into what the target column takes, whichever dialect
// wrote it (SQLite reports booleans as integers, PostgreSQL as booleans).
func decodeValue(raw json.RawMessage, kind string) (any, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if m, ok := v.(map[string]any); ok {
		s, _ := m["b64"].(string)
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, err
		}
		if kind == "text" {
			return string(b), nil
		}
		return b, nil
	}
	switch kind {
	case "bool":
		switch x := v.(type) {
		case bool:
			return x, nil
		case json.Number:
			return x.String() != "0", nil
		}
	case "int":
		switch x := v.(type) {
		case json.Number:
			return x.Int64()
		case bool:
			return boolInt(x), nil
		}
	case "real":
		if x, ok := v.(json.Number); ok {
			return x.Float64()
		}
	case "blob":
		if s, ok := v.(string); ok {
			return []byte(s), nil
		}
	}
	if x, ok := v.(json.Number); ok {
		return x.Int64()
	}
	return v, nil
}
