"""compat_headers: an aws CLI plugin for test_fakes3_compat_awscli.sh.

Debian 12's awscli (2.9) predates put-object's --if-none-match / --if-match (added to the CLI in
2024). The conditional-PUT case still goes through the aws CLI and botocore: this plugin, loaded
by the CLI's own plugin mechanism ([plugins] in the config file), adds the header to PutObject
and CompleteMultipartUpload before they are signed, as those options do, when
COMPAT_PUT_IF_NONE_MATCH / COMPAT_PUT_IF_MATCH is set in the environment. Without them it does
nothing.
"""
import os

_HEADERS = (("If-None-Match", "COMPAT_PUT_IF_NONE_MATCH"), ("If-Match", "COMPAT_PUT_IF_MATCH"))


def _add_headers(request, **kwargs):
    for header, variable in _HEADERS:
        value = os.environ.get(variable)
        if value is not None:
            request.headers[header] = value


def awscli_initialize(cli):
    cli.register("before-sign.s3.PutObject", _add_headers)
    cli.register("before-sign.s3.CompleteMultipartUpload", _add_headers)
