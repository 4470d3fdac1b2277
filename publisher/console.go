package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hybridscore/hybridscore/internal/console"
	"github.com/hybridscore/hybridscore/internal/server"
)

// consoleCmd serves the operator's web console.
type consoleCmd struct {
	natsFlags
	Listen     string `default:"127.0.0.1:8090" env:"CONSOLE_LISTEN" help:"Address the console listens on."`
	AdminToken string `name:"admin-token" env:"ADMIN_TOKEN" help:"Token an operator signs in with to replay, delete and reset (set it in the environment, not on the command line); empty: read-only."`
	LogLevel   string `name:"log-level" env:"LOG_LEVEL" default:"info" help:"debug, info, warn or error."`
	Probe      bool   `help:"Only check the console running at --listen (GET /healthz) and exit non-zero unless it answers: a container health check."`
}

func (c *consoleCmd) probe(ctx context.Context) error {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", c.Listen, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("console at %s: %s", c.Listen, resp.Status)
	}
	return nil
}

func (c *consoleCmd) Run(ctx context.Context) error {
	if c.Probe {
		return c.probe(ctx)
	}
	// The console holds little (an index of the dead letters, a few pages
	// in flight) and is idle between requests: collecting at 1.5× the live
	// heap, under a soft limit, keeps its garbage from growing its resident
	// set. GOGC and GOMEMLIMIT, when set, rule.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(24 << 20)
	}
	log, err := server.NewLogger(c.LogLevel, "json", zapcore.Lock(os.Stderr))
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	client, err := c.connect()
	if err != nil {
		return err
	}
	defer client.NC.Close()
	con, err := console.New(console.Config{NC: client.NC, Token: c.AdminToken, Log: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", c.Listen, err)
	}
	srv := &http.Server{Handler: con.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 5 * time.Minute, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 64 << 10}
	go con.Run(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	log.Info("console listening", zap.String("addr", "http://"+ln.Addr().String()), zap.String("nats", client.NC.ConnectedUrlRedacted()),
		zap.Bool("sign_in", c.AdminToken != ""))
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
