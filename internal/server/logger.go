package server

import (
	"fmt"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// NewLogger builds the worker's zap logger writing to out: JSON by default
// ("console" for people), at level, and sampled so that a storm of
// identical failures cannot flood the disk: per second, the first 100
// entries with the same level and message are kept, then one in 100.
func NewLogger(level, format string, out zapcore.WriteSyncer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "ts"
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	enc := zapcore.NewJSONEncoder(ec)
	if format == "console" {
		enc = zapcore.NewConsoleEncoder(ec)
	}
	core := zapcore.NewSamplerWithOptions(zapcore.NewCore(enc, out, lvl), time.Second, 100, 100)
	return zap.New(core, zap.AddCaller(), zap.ErrorOutput(out)), nil
}
