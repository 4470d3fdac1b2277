package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/hybridscore/hybridscore/internal/config"
)

func TestTracingFromTheEnvironment(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
	t.Setenv("OTEL_SERVICE_NAME", "scorer-eu")
	var cli struct {
		config.Config `embed:""`
	}
	p, err := kong.New(&cli)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse([]string{"--otel-traces-exporter", "console"}); err != nil {
		t.Fatal(err)
	}
	if err := cli.Validate(); err != nil {
		t.Fatal(err)
	}
	tc := cli.TracingConfig("hybridscore-worker", "v1")
	if !tc.On() || tc.Exporter != "console" || tc.Endpoint != "http://collector:4318" || tc.ServiceName != "scorer-eu" || tc.ServiceVersion != "v1" {
		t.Fatalf("%+v", tc)
	}
}

func TestTracingOffByDefault(t *testing.T) {
	c := config.Defaults()
	tc := c.TracingConfig("hybridscore-worker", "dev")
	if tc.On() || tc.ServiceName != "hybridscore-worker" {
		t.Fatalf("%+v", tc)
	}
}

func TestTracingValidateNamesTheVariable(t *testing.T) {
	for env, mutate := range map[string]func(*config.Config){
		"OTEL_TRACES_EXPORTER":               func(c *config.Config) { c.OTELTracesExporter = "zipkin" },
		"OTEL_EXPORTER_OTLP_ENDPOINT":        func(c *config.Config) { c.OTELExporterOTLPEndpoint = "collector:4318" },
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": func(c *config.Config) { c.OTELExporterOTLPTracesEndpoint = "grpc://collector" },
	} {
		c := config.Defaults()
		mutate(&c)
		err := c.Validate()
		if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), env) {
			t.Errorf("%s: %v", env, err)
		}
	}
}
