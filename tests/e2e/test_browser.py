"""A real browser (headless Chromium) uploading to Shoal from a page of
another origin: the preflight, the presigned PUT and a GET that reads an
exposed header, all under the bucket's CORS rules, as a web app does."""

import http.server
import json
import os
import shutil
import subprocess
import threading

import pytest

from conftest import free_port

PAGE = """<!doctype html><html><body><pre id="out">running</pre><script>
async function run() {
  const steps = [];
  try {
    const put = await fetch(%(put)s, {method: "PUT", body: "written by a browser",
                                     headers: {"Content-Type": "text/plain"}});
    steps.push("put " + put.status);
    const got = await fetch(%(get)s);
    steps.push("get " + got.status + " " + (await got.text()) + " etag " + (got.headers.get("ETag") ? "seen" : "hidden"));
  } catch (e) {
    steps.push("blocked " + e.name);
  }
  document.getElementById("out").textContent = steps.join("; ");
}
run();
</script></body></html>"""


FORM_PAGE = """<!doctype html><html><body><pre id="out">running</pre><script>
async function run() {
  let result;
  try {
    const form = new FormData();
    for (const [name, value] of Object.entries(%(fields)s)) form.append(name, value);
    form.append("file", new Blob(["posted by a browser"], {type: "text/plain"}), "note.txt");
    const r = await fetch(%(url)s, {method: "POST", body: form});
    result = "post " + r.status;
  } catch (e) {
    result = "blocked " + e.name;
  }
  document.getElementById("out").textContent = result;
}
run();
</script></body></html>"""


def serve_page(html):
    """Serves `html` at / on a port of its own; returns (origin, server)."""
    body = html.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}", server


def run_in_browser(url):
    """Loads `url` in headless Chromium and returns what the page wrote."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        if os.environ.get("CI"):
            pytest.fail("CI installs Chromium (.ci/run); the browser test must run there")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    out = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--virtual-time-budget=15000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )
    start = out.stdout.find('<pre id="out">')
    assert start >= 0, out.stderr[-2000:]
    return out.stdout[start + len('<pre id="out">'):out.stdout.find("</pre>", start)]


def test_a_page_of_another_origin_uploads_and_reads_back_under_cors(node, bucket):
    s3 = node.client(signature_version="s3v4")
    urls = {
        "put": json.dumps(s3.generate_presigned_url(
            "put_object", Params={"Bucket": bucket, "Key": "from-browser.txt", "ContentType": "text/plain"})),
        "get": json.dumps(s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "from-browser.txt"})),
    }
    allowed_origin, allowed = serve_page(PAGE % urls)
    other_origin, other = serve_page(PAGE % urls)
    try:
        # Without rules the browser refuses to send the upload at all.
        assert run_in_browser(allowed_origin + "/") == "blocked TypeError"
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [{
            "AllowedOrigins": [allowed_origin], "AllowedMethods": ["GET", "PUT", "POST"],
            "AllowedHeaders": ["content-type"], "ExposeHeaders": ["ETag"]}]})
        assert run_in_browser(allowed_origin + "/") == \
            "put 200; get 200 written by a browser etag seen"
        body = s3.get_object(Bucket=bucket, Key="from-browser.txt")
        assert body["Body"].read() == b"written by a browser" and body["ContentType"] == "text/plain"
        # A page of an origin the rules do not name stays blocked.
        assert run_in_browser(other_origin + "/") == "blocked TypeError"
    finally:
        allowed.shutdown()
        other.shutdown()


def test_a_page_uploads_with_a_presigned_post_form(node, bucket):
    s3 = node.client(signature_version="s3v4")
    post = s3.generate_presigned_post(bucket, "forms/${filename}", ExpiresIn=600,
                                      Conditions=[["starts-with", "$key", "forms/"]])
    page = FORM_PAGE % {"fields": json.dumps(post["fields"]), "url": json.dumps(post["url"])}
    origin, server = serve_page(page)
    try:
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [{
            "AllowedOrigins": [origin], "AllowedMethods": ["POST"]}]})
        assert run_in_browser(origin + "/") == "post 204"
        got = s3.get_object(Bucket=bucket, Key="forms/note.txt")
        assert got["Body"].read() == b"posted by a browser" and got["ContentType"] == "text/plain"
    finally:
        server.shutdown()
