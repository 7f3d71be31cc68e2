#!/bin/sh
# dpu-guard: SSH forced command for the dpu-overlay CNI plugin, installed on the DPU
# (install.sh --dpu puts it at /usr/local/libexec/dpu-overlay/dpu-guard).
#
# authorized_keys of the DPU's root:
#   command="/usr/local/libexec/dpu-overlay/dpu-guard",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding ssh-ed25519 AAAA... dpu-overlay
#
# sshd puts what the client asked for in $SSH_ORIGINAL_COMMAND. The plugin asks for "sh -s" and
# sends its command line on stdin (a long line would not fit in one SSH packet or one execve
# argument); the guard then reads that line (at most 1 MiB) instead. A command line directly in
# $SSH_ORIGINAL_COMMAND is accepted too. The line is commands
# joined with " && ", each an argv whose words are POSIX single-quoted when needed
# (src/dpu/quote.ts). This guard tokenises that string itself (no shell; it never evaluates what it receives), accepts
# only the command shapes the plugin produces (src/dpu/ovs/commands.ts, src/dpu/vf-function.ts), and runs them one by one
# with execvp semantics, stopping at the first failure like "&&" does. Anything else is
# refused with a message on stderr and exit status 126.
#
# Options (put them in the command="..." of authorized_keys; they may be repeated):
#   --bridge-prefix P           VNI bridges are P<digits> (plugin: dpu.bridgePrefix; default br-vni)
#   --representor-template T    representor names (plugin: dpu.representorTemplate, {pf}/{vf}
#                               stand for numbers; default pf{pf}vf{vf})
#   --ovn                       also allow OVN mode's shapes (plugin: dpu.controlPlane "ovn"); off by default
#   --ovn-switch-prefix P       logical switches are P<vni> (plugin: dpu.ovn.switchPrefix; default vni; needs --ovn)
#   --dry-run                   print the argv of each accepted command instead of running it (OVN mode: as
#                               rewritten with the NB server; the local OVN settings are still read)
#
# OVN mode reads this DPU's own settings (ovs-vsctl get Open_vSwitch . external_ids:...): system-id (ports and
# requested-chassis must carry it), ovn-nb (the NB server the guard adds to every ovsdb-client call: the plugin
# never names it), ovn-nb-private-key / ovn-nb-certificate / ovn-nb-ca-cert (required when ovn-nb has ssl:), and
# ovn-bridge (unset or br-int). ovsdb-client exits 0 even when an op fails: the guard scans the result and exits
# 65 for an error the transaction's shape does not tolerate, 69 when the NB server cannot be reached.
#
# The parser is Perl: perl-base is Essential on Debian and Ubuntu (BlueField images are Ubuntu)
# and needs no modules beyond it. Nothing here executes the original string through a shell.
for perl in /usr/bin/perl /bin/perl; do
  if [ -x "$perl" ]; then exec "$perl" -x -- "$0" "$@"; fi
done
echo "dpu-guard: refused: perl is required on the DPU to check commands (apt-get install perl-base)" >&2
exit 126

#!perl
use strict;
# No "use warnings": loading warnings.pm is a quarter of the guard's CPU per call (callgrind: 9 of 35 M instructions
# for a plug), and every call is an ADD or DEL waiting. Warnings never decide what is refused; the guard tests
# compile this file with perl -w to keep it warning-free.
#
# Compiling is most of what the guard costs per call, so only the part every call needs is compiled up front (the
# options, the tokeniser, the ip/ovs-vsctl shapes of a plug). The rest sits in sections after __DATA__ and is
# compiled on the first command that needs it (load_section): "ovsdb" (the owner-checked and bridge/tunnel removal
# transactions), "ovn" (--ovn's shapes) and "devlink" (DPU-mode VF functions). What a section decides is the same
# as if it were compiled up front; a section that does not compile refuses everything that needs it.

my $ME = 'dpu-guard';
my $REFUSED = 126;

# ---------------------------------------------------------------- options
my (@bridge_prefixes, @rep_templates, $dry_run, $ovn, @ovn_prefixes, $compile_all);
while (@ARGV) {
  my $o = shift @ARGV;
  if ($o eq '--bridge-prefix' && @ARGV) { push @bridge_prefixes, shift @ARGV }
  elsif ($o =~ /^--bridge-prefix=(.*)\z/s) { push @bridge_prefixes, $1 }
  elsif ($o eq '--representor-template' && @ARGV) { push @rep_templates, shift @ARGV }
  elsif ($o =~ /^--representor-template=(.*)\z/s) { push @rep_templates, $1 }
  elsif ($o eq '--dry-run') { $dry_run = 1 }
  elsif ($o eq '--ovn') { $ovn = 1 }
  elsif ($o eq '--compile-all') { $compile_all = 1 }
  elsif ($o eq '--ovn-switch-prefix' && @ARGV) { push @ovn_prefixes, shift @ARGV }
  elsif ($o =~ /^--ovn-switch-prefix=(.*)\z/s) { push @ovn_prefixes, $1 }
  else { print STDERR "$ME: refused: bad guard option in authorized_keys: $o\n"; exit $REFUSED }
}
@bridge_prefixes = ('br-vni') unless @bridge_prefixes;
# what ovn-nbctl would take the NB server from: the guard names it itself
delete @ENV{qw(OVN_NB_DB OVN_NBCTL_OPTIONS OVN_NB_DAEMON)};
if (@ovn_prefixes && !$ovn) { print STDERR "$ME: refused: --ovn-switch-prefix needs --ovn\n"; exit $REFUSED }
@ovn_prefixes = ('vni') unless @ovn_prefixes;
for (@ovn_prefixes) {
  /^[A-Za-z](?:[A-Za-z0-9_.-]{0,30}[A-Za-z_.-])?\z/ or do { print STDERR "$ME: refused: bad --ovn-switch-prefix $_\n"; exit $REFUSED };
}
@rep_templates = ('pf{pf}vf{vf}') unless @rep_templates;

# Same syntax checks as the plugin's config schema (src/config/schema.ts).
for (@bridge_prefixes) {
  /^[A-Za-z][A-Za-z0-9_-]{0,6}\z/ or do { print STDERR "$ME: refused: bad --bridge-prefix $_\n"; exit $REFUSED };
}
for (@rep_templates) {
  (length($_) <= 15 && /^[A-Za-z0-9_-]*(\{pf\}|\{vf\})[A-Za-z0-9_{}-]*\z/)
    or do { print STDERR "$ME: refused: bad --representor-template $_\n"; exit $REFUSED };
}
my $BRIDGE_RE = '(?:' . join('|', map { quotemeta($_) . '[0-9]{1,8}' } @bridge_prefixes) . ')';
my $REP_RE = '(?:' . join('|', map {
  my $t = quotemeta($_);
  $t =~ s/\\\{pf\\\}/[0-9]{1,3}/g;
  $t =~ s/\\\{vf\\\}/[0-9]{1,5}/g;
  $t;
} @rep_templates) . ')';

my $UINT = qr/(?:0|[1-9][0-9]{0,8})/;
my $UUID = qr/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;
my $IP = qr/(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)/;
my $TUNNEL = qr/vx[0-9a-f]{8}/;
my $BRIDGE = qr/$BRIDGE_RE/;
my $REP = qr/$REP_RE/;
# An OVSDB string atom as the plugin writes it: a JSON string literal (src/dpu/quote.ts ovsString).
my $JSTR = qr/"(?:[^"\\\x00-\x1f]|\\["\\\/bfnrt]|\\u[0-9A-Fa-f]{4})*"/;
my $EXTKEY = qr/dpu-overlay\.(?:managed|role|vni|network|container|ifname|netns|remote)/;
my $EXT = qr/external_ids:$EXTKEY=$JSTR/;
# DPU-mode VF settings: a devlink port handle, a unicast (or all-zero: "unset") MAC, a smart_nic VF directory.
my $DL_HANDLE = qr/pci\/[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]\/(?:0|[1-9][0-9]{0,8})/;
my $UMAC = qr/[0-9a-f][02468ace](?::[0-9a-f]{2}){5}/;
my $NOT_OURS = "not this DPU's system-id";
my $OVN_TIMEOUT = qr/--timeout=(?:[1-9][0-9]?|[1-5][0-9][0-9]|600)/;
my $SMARTNIC = qr/\/sys\/class\/net\/p[0-9]{1,3}\/smart_nic\/vf[0-9]{1,5}/;

sub printable {
  my $s = shift;
  $s = substr($s, 0, 200) . '...' if length($s) > 200;
  $s =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
  return $s;
}

sub syslog_line {
  my $msg = shift;
  my $pid = fork;
  return unless defined $pid;
  if ($pid == 0) {
    open(STDIN, '<', '/dev/null'); open(STDOUT, '>', '/dev/null'); open(STDERR, '>', '/dev/null');
    exec { 'logger' } 'logger', '-t', $ME, '-p', 'auth.warning', '--', $msg;
    exit 127;
  }
  waitpid($pid, 0);
}

sub refuse {
  my $why = shift;
  my $from = defined $ENV{SSH_CLIENT} ? (split ' ', $ENV{SSH_CLIENT})[0] : 'local';
  print STDERR "$ME: refused: $why\n";
  syslog_line("refused command from $from: $why");
  exit $REFUSED;
}

# ---------------------------------------------------------------- tokeniser
# Grammar (what src/dpu/quote.ts produces, nothing more):
#   line    := command ( " && " command )*
#   command := word ( " " word )*
#   word    := ( bare | '...' | \' )+      bare chars: A-Z a-z 0-9 _ @ % + = : , . / -
# Everything else outside single quotes ($, `, ;, |, &, <, >, (, ), *, ?, [, ~, #, \, ", {, ...)
# and every control character (newline, tab, NUL, ...) anywhere is refused.
sub tokenise {
  my $line = shift;
  refuse('control character (newline, tab, NUL, ...) in command') if $line =~ /[\x00-\x1f\x7f]/;
  my (@commands, @words);
  pos($line) = 0;
  my $len = length $line;
  while (pos($line) < $len) {
    my $at = pos($line);
    if ($at > 0) {
      $line =~ /\G /gc or refuse('unexpected character ' . printable(substr($line, $at, 1)) . " at offset $at");
      refuse("empty word at offset $at") if pos($line) >= $len || substr($line, pos($line), 1) eq ' ';
      $at = pos($line);
    }
    if ($line =~ /\G&&(?= |\z)/gc) {
      refuse("empty command before && at offset $at") unless @words;
      push @commands, [@words];
      @words = ();
      refuse('command line ends with &&') if pos($line) >= $len;
      next;
    }
    my ($word, $parts) = ('', 0);
    while (1) {
      if ($line =~ /\G([A-Za-z0-9_@%+=:,.\/-]+)/gc) { $word .= $1 }
      elsif ($line =~ /\G'([^']*)'/gc) { $word .= $1 }
      elsif ($line =~ /\G\\'/gc) { $word .= "'" }
      else { last }
      $parts++;
    }
    refuse('unexpected character ' . printable(substr($line, pos($line), 1)) . ' at offset ' . pos($line)) unless $parts;
    push @words, $word;
  }
  refuse('empty command') unless @words;
  push @commands, [@words];
  return @commands;
}

# ---------------------------------------------------------------- allowed commands
sub all_match {
  my ($re, @words) = @_;
  for (@words) { return 0 unless /^$re\z/ }
  return 1;
}

# One ovs-vsctl subcommand (the words between "--" separators): the shapes of src/dpu/ovs/commands.ts.
sub vsctl_sub_ok {
  my @w = @_;
  my $s = join(' ', @w);
  my $n = @w;
  # ensure the VNI bridge
  return 1 if $n == 3 && $w[0] eq '--may-exist' && $w[1] eq 'add-br' && $w[2] =~ /^$BRIDGE\z/;
  return 1 if $n >= 4 && $w[0] eq 'set' && $w[1] eq 'Bridge' && $w[2] =~ /^$BRIDGE\z/
    && all_match(qr/(?:datapath_type=(?:system|netdev)|$EXT)/, @w[3 .. $n - 1]);
  # VXLAN tunnel ports
  return 1 if $n == 4 && $w[0] eq '--may-exist' && $w[1] eq 'add-port' && $w[2] =~ /^$BRIDGE\z/ && $w[3] =~ /^$TUNNEL\z/;
  return 1 if $n >= 4 && $w[0] eq 'set' && $w[1] eq 'Interface' && $w[2] =~ /^$TUNNEL\z/
    && all_match(qr/(?:type=vxlan|options:key=$UINT|options:remote_ip=$IP|options:local_ip=$IP)/, @w[3 .. $n - 1]);
  return 1 if $n >= 4 && $w[0] eq 'set' && $w[1] eq 'Port' && $w[2] =~ /^$TUNNEL\z/
    && all_match(qr/(?:protected=true|$EXT)/, @w[3 .. $n - 1]);
  # hardware offload switch
  return 1 if $s eq 'set Open_vSwitch . other_config:hw-offload=true';
  # the representor's port (created only: a port of that name makes the create fail on OVS's unique name index;
  # a container port is removed only by the owner-checked transaction below, never by name or bare UUID)
  # (@i/@p carry a number when the daemon batches several ADDs in one transaction: @i0, @p0, @i1, ...)
  return 1 if $n >= 4 && $w[0] =~ /^--id=\@i\d{0,3}\z/ && $w[1] eq 'create' && $w[2] eq 'Interface'
    && $w[3] =~ /^name=$REP\z/ && all_match(qr/(?:mtu_request=$UINT|$EXT)/, @w[4 .. $n - 1]);
  return 1 if $n >= 5 && $w[0] =~ /^--id=\@p(\d{0,3})\z/ && $w[4] eq "interfaces=\@i$1" && $w[1] eq 'create' && $w[2] eq 'Port'
    && $w[3] =~ /^name=$REP\z/ && all_match($EXT, @w[5 .. $n - 1]);
  return 1 if $n == 5 && $w[0] eq 'add' && $w[1] eq 'Bridge' && $w[2] =~ /^$BRIDGE\z/ && $w[3] eq 'ports' && $w[4] =~ /^\@p\d{0,3}\z/;
  # read-only queries
  if ($n >= 3 && $w[0] =~ /^--columns=/ && $w[1] eq 'find') {
    my ($cols, $table, @cond) = ($w[0], $w[2], @w[3 .. $n - 1]);
    return 1 if $table eq 'Open_vSwitch' && $cols eq '--columns=other_config' && !@cond;
    # the daemon's recovery probe: the database's identity
    return 1 if $table eq 'Open_vSwitch' && $cols eq '--columns=_uuid' && !@cond;
    return 1 if $table eq 'Bridge' && $cols =~ /^--columns=_uuid,ports(?:,datapath_type)?\z/
      && @cond == 1 && $cond[0] =~ /^name=$BRIDGE\z/;
    return 1 if $table eq 'Port' && $cols eq '--columns=_uuid' && @cond == 1 && $cond[0] =~ /^name=$BRIDGE\z/;
    return 1 if $table eq 'Port' && $cols eq '--columns=_uuid' && @cond == 2
      && $cond[0] eq 'external_ids:dpu-overlay.role="tunnel"' && $cond[1] =~ /^external_ids:dpu-overlay\.vni="$UINT"\z/;
    return 1 if $table eq 'Port' && $cols eq '--columns=_uuid,name,external_ids' && @cond == 1 && $cond[0] =~ /^name=$REP\z/;
    # a VNI's tunnels, to bring them in line with remoteVteps
    return 1 if $table eq 'Port' && $cols eq '--columns=_uuid,name,external_ids' && @cond == 2
      && $cond[0] eq 'external_ids:dpu-overlay.role="tunnel"' && $cond[1] =~ /^external_ids:dpu-overlay\.vni="$UINT"\z/;
    return 1 if $table eq 'Port' && $cols eq '--columns=_uuid,name,external_ids' && @cond >= 1
      && $cond[0] eq 'external_ids:dpu-overlay.role="container"'
      && all_match(qr/external_ids:dpu-overlay\.(?:network|container|ifname|vni)=$JSTR/, @cond[1 .. $#cond]);
    return 1 if $table eq 'Interface' && $cols eq '--columns=name,options' && @cond == 2
      && $cond[0] eq 'type=vxlan' && $cond[1] =~ /^options:key=$UINT\z/;
  }
  return 0;
}


# Runs argv (never through a shell) and returns its stdout and wait status. Its stderr is dropped unless
# keep_stderr: then it reaches the plugin, with a line of our own if argv cannot be run at all.
sub capture {
  my ($keep_stderr, @argv) = @_;
  my $pid = open(my $fh, '-|');
  refuse("cannot fork: $!") unless defined $pid;
  if ($pid == 0) {
    open(STDERR, '>', '/dev/null') unless $keep_stderr;
    { exec { $argv[0] } @argv }
    print STDERR "$ME: cannot run $argv[0]: $!\n" if $keep_stderr;
    exit 127;
  }
  my $out = do { local $/; <$fh> };
  close $fh;
  return (defined $out ? $out : '', $?);
}

sub smartnic_write {
  my ($path, $value) = @_;
  open(my $fh, '>', $path) or do { print STDERR "$ME: cannot open $path: $!\n"; exit 1 };
  print $fh $value or do { print STDERR "$ME: cannot write $path: $!\n"; exit 1 };
  close($fh) or do { print STDERR "$ME: cannot write $path: $!\n"; exit 1 };
}

# ---------------------------------------------------------------- sections compiled on demand
# The text after __DATA__ is split at "#@section <name>" lines; load_section compiles one the first time a command
# needs it, in this file's scope (it sees the options and patterns above). Returns 1 (so it can sit in a condition).
my (%SECTION, %LOADED);
sub load_section {
  my $name = shift;
  return 1 if $LOADED{$name};
  unless (%SECTION) {
    my $text = do { local $/; <DATA> };
    my $at = 0;
    for (split /^(?=#\@section )/m, defined $text ? $text : '') {
      $SECTION{$1} = [$at, $_] if /^#\@section ([a-z]+)\n/;
      $at += tr/\n//;
    }
  }
  my $s = $SECTION{$name};
  my $ok = defined $s && eval qq{#line @{[$s->[0] + 1]} "dpu-guard after __DATA__"\n$s->[1]\n1};
  $LOADED{$name} = 1;
  refuse("internal error: the guard's section $name does not compile: " . printable(defined $s ? $@ : 'missing')) unless $ok;
  return 1;
}

# Returns undef if allowed, else the reason.
sub check_command {
  my @a = @_;
  my $s = join(' ', @a);
  my $prog = $a[0];
  if ($prog eq 'ip') {
    return undef if @a == 6 && $a[1] eq '-j' && $a[2] eq 'addr' && $a[3] eq 'show' && $a[4] eq 'to' && $a[5] =~ /^$IP\z/;
    return undef if @a == 8 && $a[1] eq 'link' && $a[2] eq 'set' && $a[3] eq 'dev' && $a[4] =~ /^$REP\z/
      && $a[5] eq 'mtu' && $a[6] =~ /^$UINT\z/ && $a[6] >= 68 && $a[6] <= 65535 && $a[7] eq 'up';
    return 'only "ip link set dev <representor> mtu <68..65535> up" and "ip -j addr show to <address>" are allowed';
  }
  if ($prog eq 'ovs-vsctl') {
    return undef if $s eq 'ovs-vsctl --timeout=1 wait-until Open_vSwitch . other_config:hw-offload=true';
    return undef if $ovn && load_section('ovn') && ovn_command_ok(@a);
    return 'ovs-vsctl must start with --timeout=<seconds> -f json --'
      unless @a >= 6 && $a[1] =~ /^--timeout=[1-9][0-9]{0,3}\z/ && $a[2] eq '-f' && $a[3] eq 'json' && $a[4] eq '--';
    my @sub;
    for my $w (@a[5 .. $#a], '--') {
      if ($w eq '--') {
        return 'empty ovs-vsctl subcommand' unless @sub;
        return 'ovs-vsctl subcommand not allowed: ' . printable(join(' ', @sub)) unless vsctl_sub_ok(@sub) || ($ovn && load_section('ovn') && ovn_vsctl_sub_ok(@sub));
        @sub = ();
      } else {
        push @sub, $w;
      }
    }
    return undef;
  }
  if ($prog eq 'ovsdb-client') {
    if ($ovn && @a == 4 && $a[1] =~ /^$OVN_TIMEOUT\z/ && $a[2] =~ /^(?:transact|query)\z/ && $a[3] =~ /^\["OVN_Northbound",/) {
      load_section('ovn');
      my ($shape, $why) = nb_shape($a[2], $a[3]);
      return "ovsdb-client $a[2] OVN_Northbound: $why" unless defined $shape;
      return undef;
    }
    load_section('ovsdb');
    return ovsdb_why(@a);
  }
  if ($prog eq 'devlink') {
    load_section('devlink');
    return devlink_why(@a);
  }
  if ($prog eq 'cat') {
    # the daemon's recovery probe (has the DPU rebooted?) and the older BSP's VF function settings
    return undef if @a == 2 && $a[1] eq '/proc/sys/kernel/random/boot_id';
    return undef if @a == 2 && $a[1] =~ /^$SMARTNIC\/config\z/;
    return 'only "cat /proc/sys/kernel/random/boot_id" and "cat /sys/class/net/p<N>/smart_nic/vf<M>/config" are allowed';
  }
  if ($prog eq 'dpu-guard') {
    # the guard writes these sysfs files itself (no shell here to redirect into them)
    return undef if @a == 4 && $a[1] eq 'smartnic-write' && (
      ($a[2] =~ /^$SMARTNIC\/mac\z/ && $a[3] =~ /^$UMAC\z/)
      || ($a[2] =~ /^$SMARTNIC\/vport_state\z/ && $a[3] =~ /^(?:Up|Down|Follow)\z/)
      || ($a[2] =~ /^$SMARTNIC\/(?:max|min)_tx_rate\z/ && $a[3] =~ /^$UINT\z/));
    return 'only "dpu-guard smartnic-write /sys/class/net/p<N>/smart_nic/vf<M>/{mac,vport_state,max_tx_rate,min_tx_rate} <value>" is allowed';
  }
  if ($prog eq 'ovn-appctl') {
    return undef if $ovn && load_section('ovn') && ovn_command_ok(@a);
    return $ovn ? 'only "ovn-appctl -t ovn-controller connection-status" is allowed' : 'ovn-appctl is allowed only with the guard option --ovn';
  }
  if ($prog eq 'ovs-appctl') {
    return undef if $s eq 'ovs-appctl dpctl/dump-flows type=offloaded';
    return 'only "ovs-appctl dpctl/dump-flows type=offloaded" is allowed';
  }
  return 'command ' . printable($prog) . ' is not allowed';
}

# ---------------------------------------------------------------- main
# --compile-all (for the guard's tests, run with perl -w): compile every section and stop.
if ($compile_all) { load_section($_) for qw(ovsdb ovn ovnrest devlink); exit 0 }
my $MAX_LINE = 1024 * 1024;
my $line = $ENV{SSH_ORIGINAL_COMMAND};
refuse('no command: interactive sessions are not allowed with this key') unless defined $line && $line ne '';
if ($line eq 'sh -s') {
  # The plugin's way to send long lines: the command line comes on stdin, one line ended by a newline,
  # checked exactly like SSH_ORIGINAL_COMMAND. Nothing runs before all of it is read and checked.
  binmode(STDIN);
  my $input = '';
  while (length($input) <= $MAX_LINE + 1) {
    my $n = sysread(STDIN, $input, 65536, length $input);
    refuse("cannot read the command line from stdin: $!") unless defined $n;
    last if $n == 0;
  }
  refuse('command line on stdin longer than 1 MiB') if length($input) > $MAX_LINE + 1;
  refuse('command line on stdin does not end with a newline') unless $input =~ s/\n\z//;
  refuse('empty command line on stdin') if $input eq '';
  $line = $input;
  open(STDIN, '<', '/dev/null');
}
refuse('command line longer than 1 MiB') if length($line) > $MAX_LINE;

my @commands = tokenise($line);
# One request is at most 3 commands; the daemon's batch of up to 64 ADDs is one "ip link set" per
# representor, the optional wait-until and one ovs-vsctl.
# (Plugins that read the bridges' tunnels with one more ovs-vsctl after the plug, instead of at the end of its
# transaction, send one more: the limit keeps room for them.)
refuse('more than 67 commands joined with &&') if @commands > 67;
my %nb_shape;
for my $c (@commands) {
  my $why = check_command(@$c);
  refuse($why) if defined $why;
  if ($c->[0] eq 'ovsdb-client' && @$c == 4 && $c->[3] =~ /^\["OVN_Northbound",/) {
    # the NB server and its SSL options come from this DPU's settings, never from the plugin
    my ($shape) = nb_shape($c->[2], $c->[3]);
    my @remote = nb_remote_args();
    my $nb = pop @remote;
    @$c = ('ovsdb-client', $c->[1], @remote, $c->[2], $nb, $c->[3]);
    $nb_shape{$c} = $shape;
  }
  if ($c->[0] eq 'ovsdb-client' && @$c == 3) {
    my $uuid = removed_bridge($c->[2]);
    refuse("ovsdb-client transact: bridge $uuid is not a VNI bridge") if defined $uuid && !bridge_uuid_ok($uuid);
  }
  if ($c->[0] eq 'devlink' && $c->[2] eq 'function' && ($c->[3] eq 'set' || $c->[3] eq 'rate')) {
    my $handle = $c->[3] eq 'set' ? $c->[4] : $c->[5];
    refuse("devlink: $handle is not the port of a VF representor on this DPU") unless devlink_handle_ok($handle);
  }
}

for my $c (@commands) {
  if ($dry_run) {
    print join(' ', map { my $w = $_; $w =~ s/([\\\[\]])/\\$1/g; "[$w]" } @$c), "\n";
    next;
  }
  if ($c->[0] eq 'dpu-guard') {
    smartnic_write($c->[2], $c->[3]);
    next;
  }
  if (defined $nb_shape{$c}) {
    run_nb($nb_shape{$c}, @$c);
    next;
  }
  my $rc = system { $c->[0] } @$c;
  if ($rc == -1) {
    print STDERR "$ME: cannot run $c->[0]: $!\n";
    exit 127;
  }
  if ($? & 127) {
    # like a shell's job message, naming the command (the plugin recognises a timed-out
    # "ovs-vsctl --timeout=1 wait-until ..." by it: ovs-vsctl dies of SIGALRM on --timeout)
    my $sig = $? & 127;
    my $argv = join(' ', @$c);
    $argv = substr($argv, 0, 300) . '...' if length($argv) > 300;
    print STDERR "$ME: $argv: terminated by signal $sig" . ($sig == 14 ? ' (SIGALRM: timeout)' : '') . "\n";
    exit(128 + $sig);
  }
  my $code = $? >> 8;
  exit $code if $code != 0;
}
exit 0;

__DATA__
#@section ovsdb
# ovsdb-client transact: only the "remove this bridge if its ports are still exactly these" transaction.
my $TXN_RE = qr/^\["Open_vSwitch",\{"op":"wait","table":"Bridge","where":\[\["_uuid","==",\["uuid","($UUID)"\]\]\],"columns":\["ports"\],"until":"==","rows":\[\{"ports":\["set",\[(?:\["uuid","$UUID"\](?:,\["uuid","$UUID"\])*)?\]\]\}\],"timeout":0\},\{"op":"mutate","table":"Open_vSwitch","where":\[\],"mutations":\[\["bridges","delete",\["uuid","($UUID)"\]\]\]\}\]\z/;

# ovsdb-client transact: remove one container port only while it still has the owner the plugin names
# (src/dpu/ovs/commands.ts removeOwnedPortTxn): a Port named like a representor, carrying dpu-overlay's
# role=container and owner external_ids, is dropped from whichever bridge holds it. Matched loosely, then rebuilt
# from the extracted values and compared byte for byte: no other condition or op survives.
my $OWNED_RE = qr/^\["Open_vSwitch",\{"op":"wait","table":"Port","where":\[\["_uuid","==",\["uuid","($UUID)"\]\],\["name","==","([^"\\]*)"\],\["external_ids","includes",\["map",\[\["dpu-overlay\.container",($JSTR)\],\["dpu-overlay\.ifname",($JSTR)\],\["dpu-overlay\.network",($JSTR)\],\["dpu-overlay\.role","container"\]\]\]\]\],/;

sub txn_remove_owned {
  my ($u, $p, $c, $i, $net) = @_;
  return qq~["Open_vSwitch",{"op":"wait","table":"Port","where":[["_uuid","==",["uuid","$u"]],["name","==","$p"],["external_ids","includes",["map",[["dpu-overlay.container",$c],["dpu-overlay.ifname",$i],["dpu-overlay.network",$net],["dpu-overlay.role","container"]]]]],"columns":["name"],"until":"==","rows":[{"name":"$p"}],"timeout":0},~
    . qq~{"op":"mutate","table":"Bridge","where":[["ports","includes",["uuid","$u"]]],"mutations":[["ports","delete",["set",[["uuid","$u"]]]]]}]~;
}

# ovsdb-client transact: "remove this tunnel port from this VNI bridge if it is still exactly the plugin's tunnel"
# (src/dpu/ovs/tunnels.ts removeTunnelCommand). The port name must be the one the plugin derives from VNI and remote.
my $TUNNEL_TXN_RE = qr/^\["Open_vSwitch",\{"op":"wait","table":"Port","where":\[\["_uuid","==",\["uuid","($UUID)"\]\]\],"columns":\["name","external_ids"\],"until":"==","rows":\[\{"name":"($TUNNEL)","external_ids":\["map",\[\["dpu-overlay\.remote","($IP)"\],\["dpu-overlay\.role","tunnel"\],\["dpu-overlay\.vni","($UINT)"\]\]\]\}\],"timeout":0\},\{"op":"mutate","table":"Bridge","where":\[\["name","==","($BRIDGE)"\]\],"mutations":\[\["ports","delete",\["uuid","($UUID)"\]\]\]\}\]\z/;

sub tunnel_txn_why {
  my ($port, $name, $remote, $vni, $bridge, $port2) = @_;
  return 'ovsdb-client transact: the wait and the mutate must name the same port' unless $port eq $port2;
  require Digest::SHA;
  return 'ovsdb-client transact: the tunnel name is not the one of its VNI and remote'
    unless $name eq 'vx' . substr(Digest::SHA::sha256_hex("$vni/$remote"), 0, 8);
  return undef;
}

# The bridge a bridge-removal transaction removes (checked by bridge_uuid_ok before it runs), or undef.
sub removed_bridge { return $_[0] =~ $TXN_RE ? $1 : undef }

# The bridge-removal transaction names its bridge by UUID only: make sure it is a VNI bridge
# (Bridge.name is immutable, so this cannot change between the check and the transaction).
sub bridge_uuid_ok {
  my $uuid = shift;
  return 1 if $dry_run;
  my ($out, $status) = capture(0, 'ovs-vsctl', '--timeout=10', '--if-exists', 'get', 'Bridge', $uuid, 'name');
  refuse("ovsdb-client transact: cannot look up bridge $uuid (ovs-vsctl exit " . ($status >> 8) . ')') if $status != 0;
  $out =~ s/\s+\z//;
  return 1 if $out eq '';   # no such bridge: the transaction is a no-op
  $out =~ s/^"(.*)"\z/$1/;
  return $out =~ /^$BRIDGE\z/;
}


# Returns undef if the (non-northbound) ovsdb-client command is allowed, else the reason.
sub ovsdb_why {
  my @a = @_;
  if (@a == 3 && $a[1] eq 'transact' && $a[2] =~ $TXN_RE) {
    return 'ovsdb-client transact: the wait and the mutate must name the same bridge' unless $1 eq $2;
    return undef;
  }
  if (@a == 3 && $a[1] eq 'transact' && $a[2] =~ $OWNED_RE) {
    my ($u, $p, $c, $i, $net) = ($1, $2, $3, $4, $5);
    return "ovsdb-client transact: port name $p is not a representor name" unless $p =~ /^$REP\z/;
    return 'ovsdb-client transact: not the plugin\'s port removal' unless $a[2] eq txn_remove_owned($u, $p, $c, $i, $net);
    return undef;
  }
  return tunnel_txn_why($1, $2, $3, $4, $5, $6) if @a == 3 && $a[1] eq 'transact' && $a[2] =~ $TUNNEL_TXN_RE;
  return 'only the plugin\'s bridge-removal and tunnel-removal transactions and its owner-checked port removal are allowed for ovsdb-client';
}

#@section ovn
# ---------------------------------------------------------------- OVN mode (--ovn)
# The shapes of src/dpu/ovn/commands.ts. Each northbound transaction is matched loosely to extract its values,
# the values are checked, and the transaction is rebuilt from them and compared byte for byte: extra ops,
# reordered keys, smuggled columns or a requested-chassis list cannot survive the rebuild.
# Why this design, and the UUID scheme: docs/design/ovn-transactions.md.
my $SWITCH_UUID_PREFIX = 'd9c0a7e0-0dfb-4f1e-8a5c-';
my $OVN_SWITCH = '(?:' . join('|', map { quotemeta($_) } @ovn_prefixes) . ')';
my $MAC = qr/[0-9a-f]{2}(?::[0-9a-f]{2}){5}/;
my %OVN_LOCAL;
sub ovn_local {
  return \%OVN_LOCAL if %OVN_LOCAL;
  my @keys = qw(system-id ovn-nb ovn-nb-private-key ovn-nb-certificate ovn-nb-ca-cert ovn-bridge);
  my ($out, $status) = capture(0, 'ovs-vsctl', '--timeout=10', '--if-exists', 'get', 'Open_vSwitch', '.', map { "external_ids:$_" } @keys);
  refuse('OVN: cannot read this DPU\'s external_ids (ovs-vsctl exit ' . ($status >> 8) . ')') if $status != 0;
  my @lines = split /\n/, $out, -1;
  for my $k (@keys) {
    my $v = shift @lines;
    $v = '' unless defined $v;
    $v =~ s/^"(.*)"\z/$1/;
    refuse("OVN: external_ids:$k of this DPU contains a backslash or control character") if $v =~ /[\\\x00-\x1f\x7f]/;
    $OVN_LOCAL{$k} = $v;
  }
  refuse('OVN: this DPU\'s external_ids:system-id is not set or not a name of 1-64 letters, digits, ".", "_" or "-"')
    unless $OVN_LOCAL{'system-id'} =~ /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\z/;
  refuse('OVN: this DPU\'s external_ids:ovn-bridge is not br-int') unless $OVN_LOCAL{'ovn-bridge'} eq '' || $OVN_LOCAL{'ovn-bridge'} eq 'br-int';
  return \%OVN_LOCAL;
}

sub sysid { return ovn_local()->{'system-id'} }

# The NB server and its SSL options, from this DPU's settings only.
sub nb_remote_args {
  my $l = ovn_local();
  my $nb = $l->{'ovn-nb'};
  refuse('OVN: this DPU\'s external_ids:ovn-nb is not set (the northbound server as the DPU reaches it, e.g. ssl:192.0.2.1:6641)') if $nb eq '';
  refuse('OVN: this DPU\'s external_ids:ovn-nb must be tcp:, ssl: or unix: remotes separated by commas')
    unless $nb =~ /^(?:tcp|ssl|unix):[^\s,]+(?:,(?:tcp|ssl):[^\s,]+)*\z/;
  my @ssl;
  if ($nb =~ /(?:^|,)ssl:/) {
    for (['ovn-nb-private-key', '--private-key'], ['ovn-nb-certificate', '--certificate'], ['ovn-nb-ca-cert', '--ca-cert']) {
      my ($k, $opt) = @$_;
      refuse("OVN: ovn-nb is ssl: but this DPU's external_ids:$k is not an absolute path") unless $l->{$k} =~ m{^/};
      push @ssl, "$opt=$l->{$k}";
    }
  }
  return (@ssl, $nb);
}

sub own_port_ok {
  my $p = shift;
  my $s = quotemeta(sysid());
  return $p =~ /^dpuo-$s-[0-9a-f]{16}\z/;
}

sub vni_of_switch {
  my $n = shift;
  return undef unless $n =~ /^$OVN_SWITCH([1-9][0-9]{0,7})\z/ && $1 <= 16777215;
  return $1;
}

sub switch_uuid { return $SWITCH_UUID_PREFIX . sprintf('%012x', $_[0]) }

sub txn_ensure {
  my ($n, $v) = @_;
  my $u = switch_uuid($v);
  return qq~["OVN_Northbound",{"op":"wait","table":"Logical_Switch","where":[["name","==","$n"],["_uuid","!=",["uuid","$u"]]],"columns":["name"],"until":"==","rows":[],"timeout":0},~
    . qq~{"op":"insert","table":"Logical_Switch","uuid":"$u","row":{"name":"$n","other_config":["map",[["requested-tnl-key","$v"]]],"external_ids":["map",[["dpu-overlay.managed","true"],["dpu-overlay.vni","$v"]]]}}]~;
}

sub txn_add_port {
  my ($n, $v, $l, $p, $addr, $ps, $s, $c, $h, $i, $net) = @_;
  my $u = switch_uuid($v);
  my $psec = defined $ps ? qq{"port_security":"$addr",} : '';
  return qq~["OVN_Northbound",{"op":"wait","table":"Logical_Switch","where":[["_uuid","==",["uuid","$u"]]],"columns":["name"],"until":"==","rows":[{"name":"$n"}],"timeout":0},~
    . qq~{"op":"insert","table":"Logical_Switch_Port","uuid":"$l","row":{"name":"$p","addresses":"$addr",$psec"options":["map",[["iface-id-ver","$l"],["requested-chassis","$s"]]],~
    . qq~"external_ids":["map",[["dpu-overlay.container",$c],["dpu-overlay.host",$h],["dpu-overlay.ifname",$i],["dpu-overlay.network",$net],["dpu-overlay.vni","$v"]]]}},~
    . qq~{"op":"mutate","table":"Logical_Switch","where":[["_uuid","==",["uuid","$u"]]],"mutations":[["ports","insert",["set",[["uuid","$l"]]]]]}]~;
}

# An NB transaction or query: (shape, undef) if allowed, else (undef, reason). Tolerated errors per shape are in %NB_TOLERATED.
# add-port: its logical port's UUID is new per ADD attempt, so "duplicate uuid" means this very transaction was
# applied by an earlier run of the same line (repeated after a lost SSH channel).
my %NB_TOLERATED = ('ensure-switch' => 'duplicate uuid', 'add-port' => 'duplicate uuid', 'delete-port' => 'timed out', 'delete-switch' => 'timed out');

sub nb_shape {
  my ($verb, $j) = @_;
  my $S = sysid();
  if ($verb eq 'transact') {
    if ($j =~ /^\["OVN_Northbound",\{"op":"wait","table":"Logical_Switch","where":\[\["name","==","([^"]*)"\],\["_uuid","!="/) {
      my ($n, $v) = ($1, vni_of_switch($1));
      return (undef, "ensure-switch: switch name $n is not a configured prefix and a VNI") unless defined $v;
      return $j eq txn_ensure($n, $v) ? ('ensure-switch', undef) : (undef, 'ensure-switch: not the plugin\'s transaction');
    }
    if ($j =~ /^\["OVN_Northbound",\{"op":"wait","table":"Logical_Switch","where":\[\["_uuid","==",\["uuid","$UUID"\]\]\],"columns":\["name"\],"until":"==","rows":\[\{"name":"([^"]*)"\}\],"timeout":0\},\{"op":"insert","table":"Logical_Switch_Port","uuid":"($UUID)","row":\{"name":"([^"]*)","addresses":"([^"]*)",("port_security":"[^"]*",)?"options":\["map",\[\["iface-id-ver","$UUID"\],\["requested-chassis","([^"]*)"\]\]\],"external_ids":\["map",\[\["dpu-overlay\.container",($JSTR)\],\["dpu-overlay\.host",($JSTR)\],\["dpu-overlay\.ifname",($JSTR)\],\["dpu-overlay\.network",($JSTR)\],/) {
      my ($n, $l, $p, $addr, $ps, $s, $c, $h, $i, $net) = ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10);
      my $v = vni_of_switch($n);
      return (undef, "add-port: switch name $n is not a configured prefix and a VNI") unless defined $v;
      return (undef, "add-port: requested-chassis is $NOT_OURS") unless $s eq $S;
      return (undef, "add-port: port name is $NOT_OURS") unless own_port_ok($p);
      return (undef, 'add-port: addresses must be a MAC and up to 8 IP addresses') unless $addr =~ /^$MAC(?: $IP){0,8}\z/;
      return $j eq txn_add_port($n, $v, $l, $p, $addr, $ps, $s, $c, $h, $i, $net) ? ('add-port', undef) : (undef, 'add-port: not the plugin\'s transaction');
    }
    load_section('ovnrest');
    return nb_transact_rest($j, $S);
  }
  load_section('ovnrest');
  return nb_query($j, $S);
}

# ovs-vsctl subcommands of OVN mode: the representor on br-int, bound to one of this chassis's ports.
sub ovn_vsctl_sub_ok {
  my @w = @_;
  my $n = @w;
  return 0 unless $ovn;
  if ($n >= 5 && $w[0] =~ /^--id=\@i\d{0,3}\z/ && $w[1] eq 'create' && $w[2] eq 'Interface' && $w[3] =~ /^name=$REP\z/) {
    my ($ids, $vers) = (0, 0);
    for (@w[4 .. $n - 1]) {
      if (/^external_ids:iface-id="([^"]*)"\z/) { return 0 unless own_port_ok($1); $ids++ }
      elsif (/^external_ids:iface-id-ver="$UUID"\z/) { $vers++ }
      elsif (!/^(?:mtu_request=$UINT|$EXT)\z/) { return 0 }
    }
    return $ids == 1 && $vers == 1;
  }
  return 1 if $n == 5 && $w[0] eq 'add' && $w[1] eq 'Bridge' && $w[2] eq 'br-int' && $w[3] eq 'ports' && $w[4] =~ /^\@p\d{0,3}\z/;
  return 1 if $n == 4 && $w[0] eq '--columns=_uuid,name,external_ids' && $w[1] eq 'find' && $w[2] eq 'Interface' && $w[3] =~ /^name=$REP\z/;
  return 1 if $n == 4 && $w[0] =~ /^--columns=_uuid,(?:ports|datapath_type)\z/ && $w[1] eq 'find' && $w[2] eq 'Bridge' && $w[3] eq 'name=br-int';
  return 0;
}


# Whole commands of OVN mode other than ovs-vsctl transactions; undef if not one.
sub ovn_command_ok {
  my @a = @_;
  return 0 unless $ovn;
  my $s = join(' ', @a);
  return 1 if $s eq 'ovn-appctl -t ovn-controller connection-status';
  return 1 if @a == 6 && $a[0] eq 'ovs-vsctl' && $a[1] =~ /^$OVN_TIMEOUT\z/ && $a[2] eq 'wait-until' && $a[3] eq 'Interface' && $a[4] =~ /^$REP\z/
    && $a[5] eq 'external_ids:ovn-installed="true"';
  return 1 if @a == 9 && $a[0] eq 'ovs-vsctl' && $a[1] =~ /^$OVN_TIMEOUT\z/
    && join(' ', @a[2 .. 8]) eq '--if-exists get Open_vSwitch . external_ids:system-id external_ids:ovn-encap-ip external_ids:ovn-encap-type';
  return 0;
}

# Runs an NB ovsdb-client command, passing its output through; exits 65 on an op error its shape does not
# tolerate and 69 when the NB server cannot be reached.
sub run_nb {
  my ($shape, @argv) = @_;
  my ($out, $status) = capture(1, @argv);
  # unbuffered: the commands after this one write to the same stdout directly
  $| = 1;
  print $out;
  if ($status & 127) {
    my $sig = $status & 127;
    print STDERR "$ME: ovsdb-client $argv[-3] OVN_Northbound $shape: terminated by signal $sig" . ($sig == 14 ? ' (SIGALRM: timeout)' : '') . "\n";
    exit(128 + $sig);
  }
  if ($status != 0) {
    my $code = $status >> 8;
    print STDERR "$ME: OVN_Northbound $shape: ovsdb-client exit $code: cannot reach the northbound server $argv[-2] (external_ids:ovn-nb)\n";
    exit 69;
  }
  my $tolerated = $NB_TOLERATED{$shape} // '';
  while ($out =~ /[{,]"error":"((?:[^"\\]|\\.)*)"/g) {
    my $err = $1;
    next if $err eq $tolerated;
    my ($details) = $out =~ /[{,]"details":"((?:[^"\\]|\\.)*)"/;
    print STDERR "$ME: OVN_Northbound $shape: " . printable($err) . ': ' . printable($details // '') . "\n";
    exit 65;
  }
  if ($out !~ /^\[/) {
    print STDERR "$ME: OVN_Northbound $shape: ovsdb-client printed no result\n";
    exit 65;
  }
}

#@section ovnrest
# OVN mode's removals and queries (DEL, CHECK, GC, STATUS); needs the ovn section.
my $PORT_COLUMNS = '["_uuid","name","addresses","port_security","options","up","external_ids"]';
my $QUERY_PING = '["OVN_Northbound",{"op":"comment","comment":"dpu-overlay status"}]';

sub txn_delete_port {
  my ($l, $p, $s) = @_;
  return qq~["OVN_Northbound",{"op":"wait","table":"Logical_Switch_Port","where":[["_uuid","==",["uuid","$l"]],["name","==","$p"],["options","includes",["map",[["iface-id-ver","$l"],["requested-chassis","$s"]]]]],"columns":["name"],"until":"==","rows":[{"name":"$p"}],"timeout":0},~
    . qq~{"op":"mutate","table":"Logical_Switch","where":[["ports","includes",["uuid","$l"]]],"mutations":[["ports","delete",["set",[["uuid","$l"]]]]]}]~;
}

sub txn_delete_switch {
  my ($n, $v) = @_;
  my $u = switch_uuid($v);
  return qq~["OVN_Northbound",{"op":"wait","table":"Logical_Switch","where":[["_uuid","==",["uuid","$u"]],["name","==","$n"]],"columns":["ports"],"until":"==","rows":[{"ports":["set",[]]}],"timeout":0},~
    . qq~{"op":"delete","table":"Logical_Switch","where":[["_uuid","==",["uuid","$u"]]]}]~;
}

sub query_port_by_name { return qq{["OVN_Northbound",{"op":"select","table":"Logical_Switch_Port","where":[["name","==","$_[0]"]],"columns":$PORT_COLUMNS}]} }

sub query_check {
  my ($l, $p, $n, $v) = @_;
  my $u = switch_uuid($v);
  return qq~["OVN_Northbound",{"op":"select","table":"Logical_Switch_Port","where":[["_uuid","==",["uuid","$l"]],["name","==","$p"]],"columns":$PORT_COLUMNS},~
    . qq~{"op":"select","table":"Logical_Switch","where":[["_uuid","==",["uuid","$u"]],["name","==","$n"]],"columns":["name","ports","other_config"]}]~;
}

sub query_mine {
  my ($s, $net) = @_;
  return qq~["OVN_Northbound",{"op":"select","table":"Logical_Switch_Port","where":[["options","includes",["map",[["requested-chassis","$s"]]]],["external_ids","includes",["map",[["dpu-overlay.network",$net]]]]],"columns":$PORT_COLUMNS}]~;
}

# nb_shape for the transactions other than a plug's (delete-port, delete-switch).
sub nb_transact_rest {
  my ($j, $S) = @_;
  if ($j =~ /^\["OVN_Northbound",\{"op":"wait","table":"Logical_Switch_Port","where":\[\["_uuid","==",\["uuid","($UUID)"\]\],\["name","==","([^"]*)"\],\["options","includes",\["map",\[\["iface-id-ver","$UUID"\],\["requested-chassis","([^"]*)"\]/) {
    my ($l, $p, $s) = ($1, $2, $3);
    return (undef, "delete-port: requested-chassis is $NOT_OURS") unless $s eq $S;
    return (undef, "delete-port: port name is $NOT_OURS") unless own_port_ok($p);
    return $j eq txn_delete_port($l, $p, $s) ? ('delete-port', undef) : (undef, 'delete-port: not the plugin\'s transaction');
  }
  if ($j =~ /^\["OVN_Northbound",\{"op":"wait","table":"Logical_Switch","where":\[\["_uuid","==",\["uuid","$UUID"\]\],\["name","==","([^"]*)"\]\],"columns":\["ports"\]/) {
    my ($n, $v) = ($1, vni_of_switch($1));
    return (undef, "delete-switch: switch name $n is not a configured prefix and a VNI") unless defined $v;
    return $j eq txn_delete_switch($n, $v) ? ('delete-switch', undef) : (undef, 'delete-switch: not the plugin\'s transaction');
  }
  return (undef, 'not one of the plugin\'s OVN_Northbound transactions');
}

# nb_shape for queries.
sub nb_query {
  my ($j, $S) = @_;
  return ('status', undef) if $j eq $QUERY_PING;
  if ($j =~ /^\["OVN_Northbound",\{"op":"select","table":"Logical_Switch_Port","where":\[\["name","==","([^"]*)"\]\]/) {
    return (undef, "query: port name is $NOT_OURS") unless own_port_ok($1);
    return $j eq query_port_by_name($1) ? ('find-port', undef) : (undef, 'query: not the plugin\'s query');
  }
  if ($j =~ /^\["OVN_Northbound",\{"op":"select","table":"Logical_Switch_Port","where":\[\["_uuid","==",\["uuid","($UUID)"\]\],\["name","==","([^"]*)"\]\],"columns":[^}]*\},\{"op":"select","table":"Logical_Switch","where":\[\["_uuid","==",\["uuid","$UUID"\]\],\["name","==","([^"]*)"\]/) {
    my ($l, $p, $n) = ($1, $2, $3);
    my $v = vni_of_switch($n);
    return (undef, "query: port name is $NOT_OURS") unless own_port_ok($p);
    return (undef, "query: switch name $n is not a configured prefix and a VNI") unless defined $v;
    return $j eq query_check($l, $p, $n, $v) ? ('check', undef) : (undef, 'query: not the plugin\'s query');
  }
  if ($j =~ /^\["OVN_Northbound",\{"op":"select","table":"Logical_Switch_Port","where":\[\["options","includes",\["map",\[\["requested-chassis","([^"]*)"\]\]\]\],\["external_ids","includes",\["map",\[\["dpu-overlay\.network",($JSTR)\]/) {
    my ($s, $net) = ($1, $2);
    return (undef, "query: requested-chassis is $NOT_OURS") unless $s eq $S;
    return $j eq query_mine($s, $net) ? ('list-ports', undef) : (undef, 'query: not the plugin\'s query');
  }
  return (undef, 'not one of the plugin\'s OVN_Northbound queries');
}

#@section devlink
# Returns undef if the devlink command is allowed, else the reason.
sub devlink_why {
  my @a = @_;
  my $s = join(' ', @a);
  return undef if $s eq 'devlink -j port show' || $s eq 'devlink -j port function rate show';
  # the representor's port function (the handle is looked up before anything runs: see devlink_handle_ok)
  if (@a >= 7 && @a <= 9 && $a[1] eq 'port' && $a[2] eq 'function' && $a[3] eq 'set' && $a[4] =~ /^$DL_HANDLE\z/ && @a % 2 == 1) {
    my %seen;
    for (my $k = 5; $k < @a; $k += 2) {
      my ($key, $v) = @a[$k, $k + 1];
      return 'devlink port function set: only hw_addr <unicast MAC> and state active|inactive, each once'
        unless !$seen{$key}++ && (($key eq 'hw_addr' && $v =~ /^$UMAC\z/) || ($key eq 'state' && $v =~ /^(?:active|inactive)\z/));
    }
    return undef;
  }
  if (@a >= 8 && @a <= 10 && $a[1] eq 'port' && $a[2] eq 'function' && $a[3] eq 'rate' && $a[4] eq 'set' && $a[5] =~ /^$DL_HANDLE\z/ && @a % 2 == 0) {
    my %seen;
    for (my $k = 6; $k < @a; $k += 2) {
      my ($key, $v) = @a[$k, $k + 1];
      return 'devlink port function rate set: only tx_share and tx_max <Mbit/s>mbit, each once'
        unless !$seen{$key}++ && $key =~ /^tx_(?:share|max)\z/ && $v =~ /^${UINT}mbit\z/;
    }
    return undef;
  }
  return 'only "devlink -j port show", "devlink -j port function rate show" and setting a representor\'s port function (hw_addr, state, tx_share, tx_max) are allowed';
}

# A port function may be set only on a VF representor of this DPU named like the configured template:
# devlink's own answer for the handle must say so (flavour pcivf, netdev matching --representor-template).
sub devlink_handle_ok {
  my $handle = shift;
  return 1 if $dry_run;
  my ($out, $status) = capture(0, 'devlink', '-j', 'port', 'show', $handle);
  return 0 if $status != 0;
  return $out =~ /"flavour":"pcivf"/ && $out =~ /"netdev":"($REP_RE)"/ && $out !~ /"netdev":"(?!$REP_RE")/;
}
