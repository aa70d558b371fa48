# frozen_string_literal: true

# Shared by the Ruby suite of mo's uniffi bindings (scripts/test-ffi.sh runs it): loads the
# generated `mo.rb` (MO_FFI_RUBY_DIR, with libmo_ffi.so on LD_LIBRARY_PATH) and starts a real
# `mod --demo` (MO_MOD_BIN) on loopback for the client-mode tests, once for the whole run.

require 'minitest/autorun'
require 'socket'
require 'tmpdir'

ruby_dir = ENV.fetch('MO_FFI_RUBY_DIR') { abort 'MO_FFI_RUBY_DIR is not set (run scripts/test-ffi.sh)' }
$LOAD_PATH.unshift(ruby_dir)
require 'mo'

# The demo's shell prompt after logging in.
PROMPT = 'sim-0\d:~\$ '

def free_port
  server = TCPServer.new('127.0.0.1', 0)
  server.addr[1]
ensure
  server&.close
end

# A `mod --demo` with its HTTP API, started on first use and stopped when the run ends.
module Daemon
  class << self
    attr_reader :url, :token

    def start
      return if @url

      binary = ENV.fetch('MO_MOD_BIN') { abort 'MO_MOD_BIN is not set (run scripts/test-ffi.sh)' }
      @data = Dir.mktmpdir('mo-rb-daemon-')
      http = free_port
      stderr = File.join(@data, 'mod.stderr')
      @pid = Process.spawn(binary, '--demo', '--data-dir', @data, '--ssh', "127.0.0.1:#{free_port}",
                           '--http', "127.0.0.1:#{http}", out: File::NULL, err: stderr)
      deadline = Time.now + 60
      loop do
        found = File.exist?(stderr) && File.read(stderr)[/MO_TOKEN=(\S+)/, 1]
        if found
          @token = found
          break
        end
        exited = Process.waitpid(@pid, Process::WNOHANG)
        if exited || Time.now > deadline
          stop
          abort "mod did not start:\n#{File.exist?(stderr) ? File.read(stderr) : ''}"
        end
        sleep 0.05
      end
      @url = "http://127.0.0.1:#{http}"
      Minitest.after_run { stop }
    end

    def stop
      if @pid
        begin
          Process.kill('TERM', @pid)
          Process.wait(@pid)
        rescue Errno::ESRCH, Errno::ECHILD
          nil
        end
        @pid = nil
      end
      FileUtils.remove_entry(@data) if @data && File.directory?(@data)
    end
  end
end

# Log into a sim console: its login prompt, a user, a password, the shell prompt.
def login(con, user: 'root', prompt: '[\w-]+:~\$ ')
  con.send_line('')
  con.expect(['login: '], 30.0)
  con.send_line(user)
  con.expect(['Password: '])
  con.send_line('pw')
  con.expect([prompt], 10.0)
end
