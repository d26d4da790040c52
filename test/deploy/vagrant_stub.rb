# Evaluates a Vagrantfile without Vagrant: a stand-in for the parts of Vagrant's
# configuration API the lab uses records what the Vagrantfile asks for and prints it as JSON.
# Usage: ruby vagrant_stub.rb VAGRANTFILE
require "json"

# Records every setting; anything not modelled below is kept as a plain value.
class Recorder
  attr_reader :values

  def initialize
    @values = {}
  end

  def method_missing(name, *args, &block)
    key = name.to_s
    if key.end_with?("=")
      @values[key.chomp("=")] = args.first
    elsif args.empty? && block.nil?
      @values[key] ||= Recorder.new
    else
      raise NoMethodError, "the stub does not model #{name}(#{args.inspect})"
    end
  end

  def respond_to_missing?(*)
    true
  end

  def to_h
    @values.transform_values { |v| v.is_a?(Recorder) ? v.to_h : v }
  end
end

class TriggerConfig < Recorder
  def after(*events, &block)
    t = Recorder.new
    block.call(t)
    (@values["after"] ||= []) << { "events" => events.map(&:to_s) }.merge(t.to_h)
  end

  def before(*events, &block)
    t = Recorder.new
    block.call(t)
    (@values["before"] ||= []) << { "events" => events.map(&:to_s) }.merge(t.to_h)
  end
end

class VmConfig < Recorder
  def initialize
    super
    @values["networks"] = []
    @values["provisioners"] = []
    @values["synced_folders"] = []
    @values["providers"] = {}
    @values["machines"] = []
  end

  def network(type, **opts)
    @values["networks"] << { "type" => type }.merge(opts.transform_keys(&:to_s))
  end

  def provision(name, **opts)
    @values["provisioners"] << { "name" => name }.merge(opts.transform_keys(&:to_s))
  end

  def synced_folder(src, dst, **opts)
    @values["synced_folders"] << { "src" => src, "dst" => dst }.merge(opts.transform_keys(&:to_s))
  end

  def provider(name, &block)
    p = Recorder.new
    block&.call(p)
    @values["providers"][name] = p.to_h
  end

  def define(name, **_opts, &block)
    c = Config.new
    block.call(c)
    @values["machines"] << { "name" => name.to_s }.merge(c.to_h)
  end
end

class Config
  attr_reader :vm, :trigger

  def initialize
    @vm = VmConfig.new
    @trigger = TriggerConfig.new
  end

  def method_missing(name, *_args)
    raise NoMethodError, "the stub does not model config.#{name}"
  end

  def respond_to_missing?(*)
    false
  end

  def to_h
    { "vm" => @vm.to_h, "trigger" => @trigger.to_h }
  end
end

module Vagrant
  @configs = []

  def self.configure(version)
    raise ArgumentError, "Vagrant.configure(#{version.inspect}): the lab uses version 2" unless version == "2"

    c = Config.new
    yield c
    @configs << c
  end

  def self.configs
    @configs
  end
end

load ARGV.fetch(0)
puts JSON.pretty_generate(Vagrant.configs.map(&:to_h))
