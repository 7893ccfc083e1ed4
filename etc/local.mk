# Sample configuration and systemd units.
ferryconfdir = $(sysconfdir)/ferry
dist_ferryconf_DATA = etc/ferry.conf etc/ferry-amqp.conf etc/ferry-kafka.conf

systemdunitdir = $(prefix)/lib/systemd/system
systemdunit_DATA = etc/systemd/ferry-producer.service etc/systemd/ferry-aggregator.service \
	etc/systemd/ferry-validator.service
EXTRA_DIST += etc/systemd/ferry-producer.service.in etc/systemd/ferry-aggregator.service.in \
	etc/systemd/ferry-validator.service.in
CLEANFILES += $(systemdunit_DATA)
edit_unit = sed -e 's|@bindir[@]|$(bindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g'
etc/systemd/ferry-producer.service: $(srcdir)/etc/systemd/ferry-producer.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) etc/systemd && $(edit_unit) $(srcdir)/etc/systemd/ferry-producer.service.in > $@
etc/systemd/ferry-aggregator.service: $(srcdir)/etc/systemd/ferry-aggregator.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) etc/systemd && $(edit_unit) $(srcdir)/etc/systemd/ferry-aggregator.service.in > $@
etc/systemd/ferry-validator.service: $(srcdir)/etc/systemd/ferry-validator.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) etc/systemd && $(edit_unit) $(srcdir)/etc/systemd/ferry-validator.service.in > $@

# JSON Schemas for ferry-validator (etc/schemas/).
schemadir = $(pkgdatadir)/schemas
dist_schema_DATA = etc/schemas/download-event.json

# Prometheus alert rules and an Alertmanager e-mail route (doc/operations.md),
# a Grafana dashboard of the exported metrics.
ferrypromdir = $(ferryconfdir)/prometheus
dist_ferryprom_DATA = etc/prometheus/ferry-alerts.yml etc/prometheus/alertmanager-email.yml
EXTRA_DIST += etc/grafana/ferry-dashboard.json
