import { mount } from 'svelte';
import './app.css';
import App from './App.svelte';
import { start } from './lib/router.svelte';
import { loadTypes } from './lib/types.svelte';

start();
void loadTypes();
mount(App, { target: document.getElementById('app')! });
