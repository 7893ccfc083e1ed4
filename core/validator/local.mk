# ferry-validator: a thin main over libferryapp (core/app).
bin_PROGRAMS += ferry-validator
ferry_validator_SOURCES = core/validator/main.c
ferry_validator_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/app
ferry_validator_LDADD = libferryapp.la
