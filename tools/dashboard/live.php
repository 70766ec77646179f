<?php
/*
 * live.php - a command-line PHP client of changelogd: it connects over wss://
 * (or ws://), sends the seed's own stored-query request
 *   {"service":"mysql","db":"lazul_changelog","stored_query_name":"getChangelogEntries"}
 * and prints the entries it gets back; with --follow it then subscribes and
 * prints every change as it is pushed.
 *
 *   php tools/dashboard/live.php --url wss://127.0.0.1:8443/ws/TOKEN [--insecure] [--follow]
 *   CHANGELOG_URL=wss://host:8443 CHANGELOG_TOKEN=clg_... php tools/dashboard/live.php
 *
 * --insecure accepts a self-signed certificate (changelogd's default one).
 * The token is the last path segment, as the server expects; it is never
 * printed.
 *
 * Why it speaks RFC 6455 itself: Debian ships no PHP websocket client
 * library (apt-cache search php websocket finds none), and this is a test
 * and example client, not part of the product. It is deliberately small:
 * PHP streams for TCP/TLS, the opening handshake with the Sec-WebSocket-Accept
 * check, masked client frames, reassembly of fragmented messages, and
 * answers to ping and close.
 */

declare(strict_types=1);
require __DIR__ . '/lib.php';   // show_hazards; nothing there connects by itself

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_MESSAGE = 64 * 1024 * 1024;

function fail(string $msg, int $code = 1): never
{
    fwrite(STDERR, "live.php: $msg\n");
    exit($code);
}

function opts(array $argv): array
{
    $o = ['url' => getenv('CHANGELOG_URL') ?: '', 'token' => getenv('CHANGELOG_TOKEN') ?: '',
          'insecure' => false, 'follow' => false, 'json' => false, 'timeout' => 10.0];
    for ($i = 1; $i < count($argv); $i++) {
        $a = $argv[$i];
        if ($a === '--url' && isset($argv[$i + 1])) {
            $o['url'] = $argv[++$i];
        } elseif ($a === '--token' && isset($argv[$i + 1])) {
            $o['token'] = $argv[++$i];
        } elseif ($a === '--timeout' && isset($argv[$i + 1])) {
            $o['timeout'] = (float)$argv[++$i];
        } elseif ($a === '--insecure') {
            $o['insecure'] = true;
        } elseif ($a === '--follow') {
            $o['follow'] = true;
        } elseif ($a === '--json') {
            $o['json'] = true;
        } elseif ($a === '--help' || $a === '-h') {
            echo "usage: php live.php --url wss://HOST:PORT/ws/TOKEN [--insecure] [--follow] [--json]\n"
               . "       (or CHANGELOG_URL=wss://HOST:PORT and CHANGELOG_TOKEN=...)\n";
            exit(0);
        } else {
            fail("unknown argument $a (see --help)", 2);
        }
    }
    if ($o['url'] === '') {
        fail('give --url wss://HOST:PORT/ws/TOKEN (or CHANGELOG_URL)', 2);
    }
    return $o;
}

/* ---- the connection -------------------------------------------------------- */

final class WsClient
{
    /** @var resource */
    private $s;
    private string $buf = '';

    public function __construct(string $url, string $token, bool $insecure, float $timeout)
    {
        $u = parse_url($url);
        if ($u === false || !isset($u['scheme'], $u['host']) ||
            !in_array($u['scheme'], ['ws', 'wss'], true)) {
            fail("not a ws:// or wss:// URL: $url", 2);
        }
        $tls = $u['scheme'] === 'wss';
        $port = $u['port'] ?? ($tls ? 443 : 80);
        $path = $u['path'] ?? '/';
        if ($token !== '') {
            $path = rtrim($path === '/' ? '' : $path, '/') . '/ws/' . rawurlencode($token);
        }
        $ctx = stream_context_create(['ssl' => [
            'verify_peer' => !$insecure, 'verify_peer_name' => !$insecure,
            'allow_self_signed' => $insecure, 'peer_name' => $u['host'],
            'alpn_protocols' => 'http/1.1']]);
        $s = @stream_socket_client(($tls ? 'tls://' : 'tcp://') . $u['host'] . ':' . $port,
                                   $errno, $errstr, $timeout, STREAM_CLIENT_CONNECT, $ctx);
        if (!$s) {
            if ($errstr === '' && $tls) {
                $errstr = 'TLS handshake failed (a self-signed certificate? see --insecure)';
            }
            fail("cannot connect to {$u['host']}:$port: $errstr");
        }
        stream_set_timeout($s, (int)max(1, ceil($timeout)));
        $this->s = $s;
        $this->handshake($u['host'] . ':' . $port, $path);
    }

    private function handshake(string $host, string $path): void
    {
        $key = base64_encode(random_bytes(16));
        $this->write("GET $path HTTP/1.1\r\nHost: $host\r\nUpgrade: websocket\r\n"
                     . "Connection: Upgrade\r\nSec-WebSocket-Key: $key\r\n"
                     . "Sec-WebSocket-Version: 13\r\nUser-Agent: changelog-live.php\r\n\r\n");
        while (($end = strpos($this->buf, "\r\n\r\n")) === false) {
            if (strlen($this->buf) > 16384) {
                fail('the server sent an oversized HTTP header');
            }
            $this->fill();
        }
        $head = substr($this->buf, 0, $end);
        $this->buf = substr($this->buf, $end + 4);
        $lines = explode("\r\n", $head);
        if (!preg_match('#^HTTP/1\.[01] (\d{3})#', $lines[0], $m)) {
            fail('not an HTTP response: ' . substr($lines[0], 0, 80));
        }
        if ($m[1] !== '101') {
            fail("the server refused the websocket: {$lines[0]}"
                 . ($m[1] === '401' || $m[1] === '403' ? ' (bad token?)' : ''));
        }
        $accept = null;
        foreach (array_slice($lines, 1) as $l) {
            if (stripos($l, 'sec-websocket-accept:') === 0) {
                $accept = trim(substr($l, strlen('sec-websocket-accept:')));
            }
        }
        if ($accept !== base64_encode(sha1($key . WS_GUID, true))) {
            fail('bad Sec-WebSocket-Accept in the handshake');
        }
    }

    private function write(string $data): void
    {
        while ($data !== '') {
            $n = @fwrite($this->s, $data);
            if ($n === false || $n === 0) {
                fail('the connection broke while sending');
            }
            $data = substr($data, $n);
        }
    }

    private function fill(): void
    {
        $chunk = fread($this->s, 65536);
        if ($chunk === false || $chunk === '') {
            $meta = stream_get_meta_data($this->s);
            fail($meta['timed_out'] ? 'timed out waiting for the server'
                                    : 'the server closed the connection');
        }
        $this->buf .= $chunk;
    }

    private function need(int $n): string
    {
        while (strlen($this->buf) < $n) {
            $this->fill();
        }
        $out = substr($this->buf, 0, $n);
        $this->buf = substr($this->buf, $n);
        return $out;
    }

    /* One client frame: FIN, opcode, masked payload (clients must mask). */
    public function send(string $payload, int $opcode = 0x1): void
    {
        $len = strlen($payload);
        $head = chr(0x80 | $opcode);
        if ($len < 126) {
            $head .= chr(0x80 | $len);
        } elseif ($len < 65536) {
            $head .= chr(0x80 | 126) . pack('n', $len);
        } else {
            $head .= chr(0x80 | 127) . pack('J', $len);
        }
        $mask = random_bytes(4);
        $masked = $payload ^ str_repeat($mask, intdiv($len, 4) + 1);
        $this->write($head . $mask . substr($masked, 0, $len));
    }

    /* The next whole text message; answers pings, fails on close. */
    public function recv(): string
    {
        $msg = '';
        for (;;) {
            [$b0, $b1] = array_values(unpack('C2', $this->need(2)));
            $fin = ($b0 & 0x80) !== 0;
            $op = $b0 & 0x0f;
            $len = $b1 & 0x7f;
            if ($b1 & 0x80) {
                fail('the server sent a masked frame');
            }
            if ($len === 126) {
                $len = unpack('n', $this->need(2))[1];
            } elseif ($len === 127) {
                $len = unpack('J', $this->need(8))[1];
            }
            if ($len > MAX_MESSAGE || strlen($msg) + $len > MAX_MESSAGE) {
                fail('message too large');
            }
            $data = $len ? $this->need($len) : '';
            if ($op === 0x9) {              // ping -> pong with the same data
                $this->send($data, 0xA);
                continue;
            }
            if ($op === 0xA) {              // unsolicited pong
                continue;
            }
            if ($op === 0x8) {
                $code = strlen($data) >= 2 ? unpack('n', $data)[1] : 1005;
                $this->send(substr($data, 0, 2), 0x8);
                fail("the server closed the connection ($code " . substr($data, 2) . ')');
            }
            if ($op !== 0x0 && $op !== 0x1 && $op !== 0x2) {
                fail("unknown frame opcode $op");
            }
            $msg .= $data;
            if ($fin) {
                return $msg;
            }
        }
    }

    public function close(): void
    {
        $this->send(pack('n', 1000), 0x8);
        fclose($this->s);
    }
}

/* ---- printing -------------------------------------------------------------- */

function line(array $e): string
{
    // one line per entry: line breaks and tabs in user text shown as
    // spaces, other controls and bidi overrides as "<U+202E>" (lib.php)
    $title = show_hazards(preg_replace('/[\t\n\r]/', ' ', (string)$e['title']));
    return sprintf("#%d [%s] [%s] %s — %s, %d comment%s, last activity %s",
                   $e['id'], $e['status'], $e['kind'], $title, $e['author'] ?? '?',
                   $e['comments'], $e['comments'] === 1 ? '' : 's', $e['last_activity']);
}

$o = opts($argv);
$ws = new WsClient($o['url'], $o['token'], $o['insecure'], $o['timeout']);
$ws->send(json_encode(['service' => 'mysql', 'db' => 'lazul_changelog',
                       'stored_query_name' => 'getChangelogEntries']));
$reply = json_decode($ws->recv(), true);
if (!is_array($reply)) {
    fail('the server answered with something that is not JSON');
}
if (isset($reply['ok']) && $reply['ok'] === false) {
    fail('the server refused the query: ' . ($reply['error']['message'] ?? 'no reason'));
}
if ($o['json']) {
    // exact data; hazards only as \u escapes (inside JSON strings, the same text)
    echo show_hazards(json_encode($reply, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES),
                      '\\u%04x'), "\n";
} else {
    printf("%d entr%s\n", count($reply), count($reply) === 1 ? 'y' : 'ies');
    foreach ($reply as $e) {
        echo line($e), "\n";
    }
}
if (!$o['follow']) {
    $ws->close();
    exit(0);
}

// live: subscribe from now on and print each change as it is pushed
$ws->send(json_encode(['id' => 'sub', 'op' => 'subscribe']));
stream_set_blocking(STDOUT, true);
for (;;) {
    try {
        $m = json_decode($ws->recv(), true);
    } catch (Throwable $t) {
        fail($t->getMessage());
    }
    if (!is_array($m)) {
        continue;
    }
    $pushes = ($m['op'] ?? '') === 'events' ? ($m['events'] ?? []) :
              ((($m['op'] ?? '') === 'event') ? [$m] : []);
    foreach ($pushes as $p) {
        $ev = $p['event'] ?? [];
        echo '* ', $ev['type'] ?? '?', ' seq ', $p['seq'] ?? '?',
             isset($p['entry']) ? ': ' . line($p['entry']) : '', "\n";
        fflush(STDOUT);
    }
}
