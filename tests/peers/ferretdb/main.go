// Command ferretdb-otel-diag runs FerretDB, a MongoDB wire-protocol server, through its
// embeddable package (github.com/FerretDB/FerretDB/ferretdb, pinned in go.mod).
//
// FerretDB's own cmd/ferretdb refuses to start when built as a dependency: its version file
// is generated in FerretDB's repository and is not in the module. The embeddable package is
// FerretDB's supported way to run it from another module, and it never starts the telemetry
// reporter, so nothing leaves the machine. The flags keep the names of FerretDB's own CLI.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listenAddr := flag.String("listen-addr", "127.0.0.1:27017", "listen TCP address")
	handler := flag.String("handler", "sqlite", "backend handler: sqlite or postgresql")
	sqliteURL := flag.String("sqlite-url", "file:data/", "SQLite URI (a directory) for the sqlite handler")
	postgresqlURL := flag.String("postgresql-url", "", "PostgreSQL URL for the postgresql handler")
	logLevel := flag.String("log-level", "info", "log level: debug, info, warn or error")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-otel-diag:", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	server, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: *listenAddr},
		Logger:        logger,
		Handler:       *handler,
		SQLiteURL:     *sqliteURL,
		PostgreSQLURL: *postgresqlURL,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-otel-diag:", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Info("starting", "listen-addr", *listenAddr, "handler", *handler)
	if err := server.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-otel-diag:", err)
		os.Exit(1)
	}
}
