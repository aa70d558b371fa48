# frozen_string_literal: true

# Embedded consoles (a `sim://` device in this process) through the uniffi bindings.

require_relative 'helper'

class TestEmbedded < Minitest::Test
  def test_login_echo_who_note
    dir = Dir.mktmpdir('mo-rb-log-')
    con = Mo.open('sim://rb01?boot=fast', Mo::OpenOptions.new(user: 'alice', log_dir: dir))
    assert_equal 'rb01', con.device
    assert_equal 'alice', con.user
    assert_equal 'attach', con.role
    m = con.expect(['never-printed', 'rb01 login: '], 30.0)
    assert_equal 1, m.index
    assert_equal 'rb01 login: ', m.matched
    con.send_line('root')
    con.expect(['Password: '])
    con.send_line('secret')
    con.expect(['rb01:~\$ '])
    # The sim echoes what is typed; the regex's group captures the word.
    con.send_line('echo hello-from-ruby')
    m = con.expect(['\nhello-from-(\w+)\n'])
    assert_equal ['ruby'], m.captures
    assert_includes m.before, 'echo hello-from-ruby'
    who = con.who
    assert_equal [%w[alice attach]], who.map { |v| [v.user, v.role] }
    assert_kind_of Time, who[0].since
    assert_in_delta Time.now.to_f, who[0].since.to_f, 120
    con.note('a note from ruby')
    con.resize(100, 40)
    con.close
    assert_nil con.read
    # The note went into the record log, beside the output.
    logged = Dir.glob(File.join(dir, '**', '*')).select { |f| File.file?(f) }.map { |f| File.binread(f) }.join
    assert_includes logged, 'a note from ruby'
  ensure
    FileUtils.remove_entry(dir) if dir
  end

  def test_read_write_bytes
    con = Mo.open('sim://rb02?boot=none')
    seen = +''
    seen << con.read until seen.include?('rb02 login: ')
    con.write("root\r".b)
    seen << con.read until seen.include?('Password: ')
    con.write("pw\r".b)
    seen << con.read until seen.include?('rb02:~$ ')
    assert_includes seen, 'root'
  ensure
    con&.close
  end

  def test_expect_literal_and_timeout
    con = Mo.open('sim://rb03?boot=none')
    login(con)
    con.send_line('echo a.b+c')
    # Taken literally: as a regex, `a.b+c` would not match the text `a.b+c`.
    m = con.expect(['a.b+c'], 5.0, true)
    assert_equal 'a.b+c', m.matched
    error = assert_raises(Mo::MoError::Timeout) { con.expect(['x+y'], 0.3, true) }
    assert_includes error.message, 'x+y'
    # The console still works after a timeout.
    con.send_line('echo still-here')
    con.expect(['still-here\n'])
  ensure
    con&.close
  end

  def test_send_break_reaches_the_boot_monitor
    con = Mo.open('sim://rb04?boot=none')
    login(con)
    refute_empty con.send_break
    con.expect(['ok '], 10.0)
    con.send_line('go')
    con.send_line('echo back')
    con.expect(['back\n'], 10.0)
  ensure
    con&.close
  end

  def test_errors_are_typed_and_name_what
    error = assert_raises(Mo::MoError::InvalidArgument) { Mo.open('nosuchscheme://box1') }
    assert_includes error.message, 'nosuchscheme://box1'
    error = assert_raises(Mo::MoError::InvalidArgument) do
      Mo.open('ssh://u@127.0.0.1:1', Mo::OpenOptions.new(trust_host_key: true))
    end
    assert_includes error.message, 'known_hosts'
    con = Mo.open('sim://rb05?boot=none')
    error = assert_raises(Mo::MoError::InvalidArgument) { con.expect(['(unclosed']) }
    assert_includes error.message, '(unclosed'
    con.close
    assert_raises(Mo::MoError::ConsoleClosed) { con.expect(['anything'], 1.0) }
  end

  def test_secrets_stay_out_of_errors
    error = assert_raises(Mo::MoError::InvalidArgument) do
      Mo.open('ssh://u@127.0.0.1:1', Mo::OpenOptions.new(private_key: '/no/such/key-file', password: 'hunter2-secret'))
    end
    assert_includes error.message, '/no/such/key-file'
    refute_includes error.message, 'hunter2-secret'
  end
end

# The `_async` twins: in Ruby they wait with the GVL released (and through a Fiber scheduler's
# io_wait when one is set), so other Ruby threads run meanwhile.
class TestEmbeddedAsync < Minitest::Test
  def test_async_twins_from_two_threads
    results = %w[rb10 rb11].map do |name|
      Thread.new do
        con = Mo.open_async("sim://#{name}?boot=none")
        con.send_line_async('')
        con.expect_async(["#{name} login: "], 30.0, true)
        con.send_line_async('root')
        con.expect_async(['Password: '])
        con.send_line_async('pw')
        con.expect_async(['[\w-]+:~\$ '], 10.0)
        con.send_line_async("echo async-#{name}")
        m = con.expect_async(['\nasync-(\w+)\n'])
        who = con.who_async
        con.close_async
        [m.captures, who.map(&:role)]
      end
    end.map(&:value)
    assert_equal [[['rb10'], ['attach']], [['rb11'], ['attach']]], results
  end
end
