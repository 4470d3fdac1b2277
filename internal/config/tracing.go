package config

import (
	"cmp"
	"fmt"

	"github.com/hybridscore/hybridscore/internal/tracing"
)

// Tracing is a program's OpenTelemetry trace export, in the variables
// OpenTelemetry defines. The worker and the publisher embed it. With none
// of them set nothing is exported and tracing costs nothing; the sampler
// (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG), OTEL_RESOURCE_ATTRIBUTES
// and the OTLP exporter's headers, timeout and compression are read by the
// OpenTelemetry SDK itself.
type Tracing struct {
	OTELExporterOTLPEndpoint       string `name:"otel-exporter-otlp-endpoint" env:"OTEL_EXPORTER_OTLP_ENDPOINT" help:"OTLP/HTTP base URL (e.g. http://collector:4318): spans go to its /v1/traces. Setting it turns tracing on."`
	OTELExporterOTLPTracesEndpoint string `name:"otel-exporter-otlp-traces-endpoint" env:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" help:"Full OTLP/HTTP URL for spans; wins over OTEL_EXPORTER_OTLP_ENDPOINT. Setting it turns tracing on."`
	OTELTracesExporter             string `name:"otel-traces-exporter" env:"OTEL_TRACES_EXPORTER" help:"otlp, console (one JSON object per span on stderr) or none; default otlp when an endpoint is set, else none."`
	OTELServiceName                string `name:"otel-service-name" env:"OTEL_SERVICE_NAME" help:"service.name of the spans (default hybridscore-worker, or hybridscore-publisher for the publisher)."`
}

// TracingConfig returns the tracing settings, with service the default
// service name and version the program's version.
func (t Tracing) TracingConfig(service, version string) tracing.Config {
	return tracing.Config{Exporter: t.OTELTracesExporter, Endpoint: t.OTELExporterOTLPEndpoint,
		TracesEndpoint: t.OTELExporterOTLPTracesEndpoint, ServiceName: cmp.Or(t.OTELServiceName, service), ServiceVersion: version}
}

// Validate checks the exporter and the endpoints, naming the variable at
// fault.
func (t Tracing) Validate() error {
	if err := t.TracingConfig("", "").Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}
